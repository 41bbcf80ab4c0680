"""Cost report exports: one job's breakdown with pandas as CSV and XLSX (openpyxl), and the ledger's rows
for a period across jobs as streamed CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pandas as pd

from tasks.models import CostEntry, Job
from tasks.reports.period import Period
from tasks.reports.selectors import get_cost_report, list_cost_breakdown

EXPORT_FORMATS = ("csv", "xlsx")


def _frame(rows: list[dict[str, Any]], by: str) -> pd.DataFrame:
    columns = [by, "total", "entries", "assignments"]
    if by == "worker":
        columns.insert(1, "worker_id")
    frame = pd.DataFrame(rows, columns=columns)
    frame["total"] = frame["total"].map(lambda d: d if isinstance(d, Decimal) else Decimal(str(d)))
    return frame


def export_cost_breakdown(job: Job, *, by: str, fmt: str, period: Period | None = None) -> bytes:
    """The job's cost rows grouped ``by`` as CSV or XLSX bytes (XLSX adds a summary sheet); ``period``:
    only the ledger rows booked in it (the summary stays the job's to date)."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}; use csv or xlsx.")
    frame = _frame(list_cost_breakdown(job, by=by, period=period), by)
    if fmt == "csv":
        return frame.to_csv(index=False).encode()
    report = get_cost_report(job)
    summary = pd.DataFrame(
        [
            ("job", report.job),
            ("name", report.name),
            ("currency", report.currency),
            ("total", report.total),
            ("approved_assignments", report.approved_assignments),
            ("labels", report.labels),
            ("cost_per_label", report.cost_per_label),
            ("budget_cap", report.budget_cap),
            ("rows_booked", str(period) if period else "all time"),
        ],
        columns=["field", "value"],
    )
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        summary.to_excel(writer, sheet_name="summary", index=False)
        frame.to_excel(writer, sheet_name=f"by {by}", index=False)
    return buffer.getvalue()


LEDGER_COLUMNS = (
    "id",
    "created_at",
    "job_id",
    "job",
    "marketplace",
    "kind",
    "status",
    "amount",
    "currency",
    "worker_id",
    "worker",
    "hit_id",
    "assignment_id",
    "reverses_id",
    "idempotency_key",
    "reference",
    "memo",
)
_LEDGER_FIELDS = tuple(
    "job__name" if c == "job" else "worker__external_id" if c == "worker" else c for c in LEDGER_COLUMNS
)
LEDGER_CHUNK = 5000


def iter_ledger_csv(period: Period, *, chunk_size: int = LEDGER_CHUNK) -> Iterator[str]:
    """The ledger rows booked in ``period``, every job, as CSV lines (a header first), in id order.

    Read in keyset-paged chunks (``id > last``) of one query each, so a year of rows is never held in
    memory and no cursor stays open between chunks while a streamed response waits for its client.
    Amounts are the exact decimal strings (4 places), times ISO 8601 in UTC."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: tuple[Any, ...]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield line(LEDGER_COLUMNS)
    rows = period.entries(CostEntry.objects.all())
    last = 0
    while True:
        chunk = list(rows.filter(id__gt=last).order_by("id").values_list(*_LEDGER_FIELDS)[:chunk_size])
        if not chunk:
            return
        last = chunk[-1][0]
        yield "".join(line(tuple(_cell(value) for value in row)) for row in chunk)


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value  # a memo or job name a spreadsheet would run as a formula
    if isinstance(value, Decimal):
        return f"{value.quantize(Decimal('0.0001')):f}"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return "" if value is None else value
