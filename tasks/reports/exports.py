"""Cost report exports built with pandas: CSV and XLSX (openpyxl)."""

from __future__ import annotations

import io
from decimal import Decimal
from typing import Any

import pandas as pd

from tasks.models import Job
from tasks.reports.selectors import get_cost_report, list_cost_breakdown

EXPORT_FORMATS = ("csv", "xlsx")


def _frame(rows: list[dict[str, Any]], by: str) -> pd.DataFrame:
    columns = [by, "total", "entries", "assignments"]
    if by == "worker":
        columns.insert(1, "worker_id")
    frame = pd.DataFrame(rows, columns=columns)
    frame["total"] = frame["total"].map(lambda d: d if isinstance(d, Decimal) else Decimal(str(d)))
    return frame


def export_cost_breakdown(job: Job, *, by: str, fmt: str) -> bytes:
    """The job's cost rows grouped ``by`` as CSV or XLSX bytes (XLSX adds a summary sheet)."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}; use csv or xlsx.")
    frame = _frame(list_cost_breakdown(job, by=by), by)
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
        ],
        columns=["field", "value"],
    )
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        summary.to_excel(writer, sheet_name="summary", index=False)
        frame.to_excel(writer, sheet_name=f"by {by}", index=False)
    return buffer.getvalue()
