"""A reporting period (``since`` / ``until``, whole days, both included) and the finance dashboard's
figures for one: spend per job and per marketplace from the ledger rows booked in it.

Without a period the dashboard reads the jobs' cost tallies (``tasks.reports.selectors``); a period needs
the ledger rows themselves, read through the ``created_at`` index with one grouped query per figure (spend
per day: through the day index, ``tasks.reports.selectors.list_spend_over_time``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

from django.db import connections
from django.db.models import QuerySet, Sum
from django.utils import timezone

from tasks.models import CostEntry
from tasks.reports.selectors import JobCost, MarketplaceSpend, list_job_costs
from tasks.services.budget import exact

M = TypeVar("M", bound=Any)


@dataclass(frozen=True)
class Period:
    """Whole days in the server's time zone; either end may be open."""

    since: date | None = None
    until: date | None = None

    def __bool__(self) -> bool:
        return self.since is not None or self.until is not None

    @property
    def start(self) -> datetime | None:
        """The first instant of ``since``."""
        return timezone.make_aware(datetime.combine(self.since, time.min)) if self.since else None

    @property
    def end(self) -> datetime | None:
        """The first instant after ``until`` (so ``until`` is included); none when ``until`` is the last day
        a date can name (``date.max``: no day follows it, so the period is open at its end)."""
        if self.until is None or self.until >= date.max:
            return None
        return timezone.make_aware(datetime.combine(self.until + timedelta(days=1), time.min))

    def entries(self, entries: QuerySet[M]) -> QuerySet[M]:
        """``entries`` (ledger rows, or anything with a ``created_at``) booked in the period."""
        if self.start is not None:
            entries = entries.filter(created_at__gte=self.start)
        if self.end is not None:
            entries = entries.filter(created_at__lt=self.end)
        return entries

    @property
    def query(self) -> str:
        """The period as a URL query string (empty without one)."""
        parts = [f"since={self.since.isoformat()}"] if self.since else []
        parts += [f"until={self.until.isoformat()}"] if self.until else []
        return "&".join(parts)

    def __str__(self) -> str:
        if not self:
            return "all time"
        return f"{self.since.isoformat() if self.since else '…'} to {self.until.isoformat() if self.until else '…'}"


def list_job_spend_in_period(period: Period, *, limit: int = 50) -> list[JobCost]:
    """The most recent jobs with ledger rows in ``period``, with what they spent in it and no cost per label
    (``tasks.reports.selectors.list_job_costs`` over the period)."""
    return list_job_costs(limit=limit, period=period)


def list_spend_by_marketplace_in_period(period: Period) -> list[MarketplaceSpend]:
    """Spend in ``period`` per marketplace and the currency the rows were booked in, with how many jobs spent.

    One query, grouped twice in the database: the period's rows by marketplace, currency and job (hashed),
    then those groups by marketplace and currency, so a few rows come back however many jobs spent (a
    ``COUNT(DISTINCT job)`` in one grouping would sort every ledger row of the period). Sums are exact
    ``Decimal`` on PostgreSQL and made so on SQLite, which adds decimals as floats (``exact``)."""
    per_job = (
        period.entries(CostEntry.objects.all())
        .values("marketplace", "currency", "job_id")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    sql, params = per_job.query.sql_with_params()
    database = connections[per_job.db]
    marketplace, currency, total = (database.ops.quote_name(name) for name in ("marketplace", "currency", "total"))
    with database.cursor() as cursor:
        cursor.execute(
            f"SELECT {marketplace}, {currency}, SUM({total}), COUNT(*) FROM ({sql}) per_job "
            f"GROUP BY {marketplace}, {currency}",
            params,
        )
        rows = cursor.fetchall()
    return [
        MarketplaceSpend(marketplace=market, currency=code, total=exact(spent), jobs=jobs)
        for market, code, spent, jobs in sorted(rows, key=lambda row: (row[0], row[1]))  # a few rows: sorted here
    ]
