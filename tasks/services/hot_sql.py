"""Running the internal pool's hot statements on PostgreSQL as prepared statements.

The claim and record statements are planned once per connection instead of on every call (their plan
costs more than their execution). Set ``DB_PREPARED_STATEMENTS=0`` behind a pooler that cannot keep
prepared statements (PgBouncer in transaction mode before 1.21).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection


def fetch_one(sql: str, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
    """Execute ``sql`` on Django's current PostgreSQL connection (inside its transaction); first row."""
    connection.ensure_connection()
    raw = connection.connection
    with psycopg.Cursor(raw) as cursor:  # server-side parameter binding, so the statement can be prepared
        cursor.execute(sql, params, prepare=settings.DB_PREPARED_STATEMENTS or None)
        return cursor.fetchone()


def execute(sql: str, params: Mapping[str, Any]) -> None:
    """Execute ``sql`` (a statement without a result) like ``fetch_one``; a constraint it breaks raises
    Django's ``IntegrityError``."""
    connection.ensure_connection()
    raw = connection.connection
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        cursor.execute(sql, params, prepare=settings.DB_PREPARED_STATEMENTS or None)
