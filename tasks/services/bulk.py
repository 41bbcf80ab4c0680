"""Bulk writes: PostgreSQL COPY where available, ``bulk_create`` in batches elsewhere."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, models

BATCH_SIZE = 5000


def _copy_value(value: Any, is_json: bool) -> Any:
    if is_json and value is not None:  # None stays SQL NULL, as the ORM stores it
        return json.dumps(value, separators=(",", ":"))
    return value


def bulk_insert(model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Insert ``rows`` (tuples in ``columns`` order, by attribute name) without returning ids.

    On PostgreSQL this is one COPY; elsewhere ``bulk_create`` in batches. Runs in the caller's
    transaction, so a failure leaves nothing behind.
    """
    if connection.vendor == "postgresql":
        fields = [model._meta.get_field(name) for name in columns]
        db_columns = ", ".join(
            connection.ops.quote_name(str(getattr(f, "column", name))) for f, name in zip(fields, columns, strict=True)
        )
        table = connection.ops.quote_name(model._meta.db_table)
        json_columns = [isinstance(f, models.JSONField) for f in fields]
        count = 0
        with connection.cursor() as cursor, cursor.copy(f"COPY {table} ({db_columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([_copy_value(v, j) for v, j in zip(row, json_columns, strict=True)])
                count += 1
        return count
    count = 0
    batch: list[models.Model] = []
    for row in rows:
        batch.append(model(**dict(zip(columns, row, strict=True))))
        if len(batch) >= BATCH_SIZE:
            model._default_manager.bulk_create(batch, batch_size=BATCH_SIZE)
            count += len(batch)
            batch = []
    if batch:
        model._default_manager.bulk_create(batch, batch_size=BATCH_SIZE)
        count += len(batch)
    return count
