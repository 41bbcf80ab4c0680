"""Django's ``flush``, able to empty the audit tables on SQLite.

On SQLite, flush empties every table with ``DELETE FROM``, which the audit tables' row guards (migration 0007)
refuse; so there it runs inside ``audit_guards_lifted`` (the guards are switched off and on again in one
transaction). Flushing is a whole reset of the trail, as on PostgreSQL, where flush's one ``TRUNCATE`` of
every table passes migration 0005's guards untouched; a checkpoint kept outside the database shows such a
reset. Django's transactional tests flush between tests through this command too.

Same arguments, prompt and messages as Django's command, which it subclasses. It runs instead of Django's
because Django gives a command name to an app before ``django.core``. (At an interactive prompt on SQLite the
transaction is already open, so other connections wait for the answer.)
"""

from __future__ import annotations

from typing import Any

from django.core.management.commands import flush
from django.db import connections

from workforce.audit import audit_guards_lifted


class Command(flush.Command):
    def handle(self, **options: Any) -> None:
        database = options["database"]
        if connections[database].vendor != "sqlite":
            super().handle(**options)
            return
        with audit_guards_lifted(using=database):
            super().handle(**options)
