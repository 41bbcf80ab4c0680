"""Database guards for what 0002 left open.

PostgreSQL:

* TRUNCATE of ``workforce_auditevent`` (which skips 0002's row triggers) is refused unless the chain head is
  emptied by the same statement, and TRUNCATE of the head unless the events are: the trail can only be reset
  as a whole (what Django's test flush does), never cut and re-filled under a head that still vouches for
  it. The check runs AFTER the statement's truncations, so ``TRUNCATE workforce_auditevent,
  workforce_auditchainhead`` passes and either one alone does not. A whole reset leaves an empty trail that
  a checkpoint kept outside the database catches.
* The chain head refuses DELETE and any UPDATE that lowers its count or changes its id: appends only ever
  raise the count, so a cut end can no longer be hidden by rewinding the head.

SQLite (development and the default test run): the head refuses an UPDATE lowering its count. Row guards on
SQLite's event table and on deleting the head are left out: SQLite cannot switch a trigger off, so the test
suite's tamper tests and Django's flush between transactional tests (``DELETE FROM`` every table) would fail.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

PG_CREATE = """
CREATE OR REPLACE FUNCTION workforce_audit_truncate_whole() RETURNS trigger AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM workforce_auditevent) OR EXISTS (SELECT 1 FROM workforce_auditchainhead) THEN
        RAISE EXCEPTION 'the audit trail can only be truncated as a whole: TRUNCATE %% refused', TG_TABLE_NAME;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS workforce_auditevent_truncate_whole ON workforce_auditevent;
CREATE TRIGGER workforce_auditevent_truncate_whole AFTER TRUNCATE ON workforce_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION workforce_audit_truncate_whole();
DROP TRIGGER IF EXISTS workforce_auditchainhead_truncate_whole ON workforce_auditchainhead;
CREATE TRIGGER workforce_auditchainhead_truncate_whole AFTER TRUNCATE ON workforce_auditchainhead
    FOR EACH STATEMENT EXECUTE FUNCTION workforce_audit_truncate_whole();

CREATE OR REPLACE FUNCTION workforce_auditchainhead_forward_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'the audit chain head cannot be deleted';
    END IF;
    IF NEW.id <> OLD.id OR NEW.count < OLD.count THEN
        RAISE EXCEPTION 'the audit chain head only moves forward: count %% to %% refused', OLD.count, NEW.count;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS workforce_auditchainhead_forward_only ON workforce_auditchainhead;
CREATE TRIGGER workforce_auditchainhead_forward_only BEFORE UPDATE OR DELETE ON workforce_auditchainhead
    FOR EACH ROW EXECUTE FUNCTION workforce_auditchainhead_forward_only();
"""
PG_DROP = """
DROP TRIGGER IF EXISTS workforce_auditchainhead_forward_only ON workforce_auditchainhead;
DROP FUNCTION IF EXISTS workforce_auditchainhead_forward_only();
DROP TRIGGER IF EXISTS workforce_auditchainhead_truncate_whole ON workforce_auditchainhead;
DROP TRIGGER IF EXISTS workforce_auditevent_truncate_whole ON workforce_auditevent;
DROP FUNCTION IF EXISTS workforce_audit_truncate_whole();
"""
SQLITE_CREATE = [
    "DROP TRIGGER IF EXISTS workforce_auditchainhead_forward_only",
    """
    CREATE TRIGGER workforce_auditchainhead_forward_only BEFORE UPDATE ON workforce_auditchainhead
    FOR EACH ROW WHEN NEW.count < OLD.count OR NEW.id <> OLD.id
    BEGIN
        SELECT RAISE(ABORT, 'the audit chain head only moves forward');
    END
    """,
]
SQLITE_DROP = ["DROP TRIGGER IF EXISTS workforce_auditchainhead_forward_only"]


def _run(postgresql: str, sqlite: list[str]) -> Any:
    def apply(apps: Any, schema_editor: Any) -> None:
        vendor = schema_editor.connection.vendor
        if vendor == "postgresql":
            schema_editor.execute(postgresql)
        elif vendor == "sqlite":
            for statement in sqlite:
                schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [("workforce", "0004_worker_identity_permission")]

    operations = [migrations.RunPython(_run(PG_CREATE, SQLITE_CREATE), _run(PG_DROP, SQLITE_DROP))]
