"""Finance reads: cost estimates, cost reports, exports and charts. Aggregation happens in the database."""
