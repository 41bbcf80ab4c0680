"""Workers, marketplaces, scoring and the audit trail. Imports no other app of the project."""
