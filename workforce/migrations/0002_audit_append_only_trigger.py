"""On PostgreSQL, a trigger refuses UPDATE and DELETE on audit events (TRUNCATE stays a DBA's tool)."""

from __future__ import annotations

from typing import Any

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION workforce_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only: %% refused on workforce_auditevent', TG_OP;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS workforce_auditevent_append_only ON workforce_auditevent;
CREATE TRIGGER workforce_auditevent_append_only BEFORE UPDATE OR DELETE ON workforce_auditevent
    FOR EACH ROW EXECUTE FUNCTION workforce_auditevent_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS workforce_auditevent_append_only ON workforce_auditevent;
DROP FUNCTION IF EXISTS workforce_auditevent_append_only();
"""


def _run(sql: str) -> Any:
    def apply(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return apply


class Migration(migrations.Migration):
    dependencies = [("workforce", "0001_initial")]

    operations = [migrations.RunPython(_run(CREATE), _run(DROP))]
