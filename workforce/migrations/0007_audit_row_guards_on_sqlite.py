"""Row guards on SQLite, as PostgreSQL has had since 0002, 0003 and 0005.

PostgreSQL already refuses UPDATE and DELETE of audit events (0002, ``BEFORE UPDATE OR DELETE`` on
``workforce_auditevent``), UPDATE of pending events (0003) and DELETE of the chain head (0005): nothing to add
there. SQLite (the zero-setup default) had only 0005's forward-only head. Here it gets the rest:

* ``workforce_auditevent_no_update`` / ``workforce_auditevent_no_delete``: an audit event can be neither
  changed nor deleted;
* ``workforce_pendingauditevent_no_update``: a pending event cannot be changed (the sealer only deletes it);
* ``workforce_auditchainhead_no_delete``: the chain head cannot be deleted (else: delete it, cut events,
  insert a new head).

SQLite cannot switch a trigger off, and Django's flush (``manage.py flush``, and the teardown of every
transactional test) empties tables with ``DELETE FROM``. Both go through ``workforce.audit.audit_guards_lifted``,
the one maintenance path: it drops these triggers and creates them again *in the same transaction*, so no
other connection ever sees the tables unguarded and a failure restores them by rollback. ``flush`` is
overridden by ``workforce/management/commands/flush.py`` to run inside it (a whole reset, like PostgreSQL's
``TRUNCATE`` of both audit tables, which 0005 allows and a kept checkpoint catches).

Caveat: SQLite alters a table by rebuilding it, which drops its triggers. A later migration that alters
``workforce_auditevent``, ``workforce_pendingauditevent`` or ``workforce_auditchainhead`` on SQLite must run
``SQLITE_CREATE`` again (``tests/workforce/test_audit_row_guards.py`` checks the guards after all migrations).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations


def _refuse(name: str, when: str, table: str, message: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {name}",
        f"CREATE TRIGGER {name} BEFORE {when} ON {table} FOR EACH ROW BEGIN SELECT RAISE(ABORT, '{message}'); END",
    ]


SQLITE_CREATE = [
    *_refuse(
        "workforce_auditevent_no_update",
        "UPDATE",
        "workforce_auditevent",
        "audit events are append-only: UPDATE refused on workforce_auditevent",
    ),
    *_refuse(
        "workforce_auditevent_no_delete",
        "DELETE",
        "workforce_auditevent",
        "audit events are append-only: DELETE refused on workforce_auditevent",
    ),
    *_refuse(
        "workforce_pendingauditevent_no_update",
        "UPDATE",
        "workforce_pendingauditevent",
        "pending audit events cannot be changed: UPDATE refused on workforce_pendingauditevent",
    ),
    *_refuse(
        "workforce_auditchainhead_no_delete",
        "DELETE",
        "workforce_auditchainhead",
        "the audit chain head cannot be deleted",
    ),
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS workforce_auditevent_no_update",
    "DROP TRIGGER IF EXISTS workforce_auditevent_no_delete",
    "DROP TRIGGER IF EXISTS workforce_pendingauditevent_no_update",
    "DROP TRIGGER IF EXISTS workforce_auditchainhead_no_delete",
]


def _run(sqlite: list[str]) -> Any:
    def apply(apps: Any, schema_editor: Any) -> None:
        if schema_editor.connection.vendor == "sqlite":
            for statement in sqlite:
                schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [("workforce", "0006_invitation")]

    operations = [migrations.RunPython(_run(SQLITE_CREATE), _run(SQLITE_DROP))]
