"""The finance dashboard's ledger reads: the figures it shows on a small ledger, pinned (spend per day over the
last 60 days and over a period, spend per job and per marketplace), and, on PostgreSQL, the plans of its
ledger queries: spend per day is read from the ledger's day index from the window's first day, grouped in
the index's order (no sort of the window's rows), and spend per marketplace in a period is hashed by job
(no sort for a distinct count)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tasks.models import CostEntry, CostKind, CostStatus, Job
from tasks.reports.period import Period, list_spend_by_marketplace_in_period
from tasks.reports.selectors import list_spend_over_time
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db
D = Decimal
NOW = timezone.now()


def _day(at: datetime) -> date:
    return timezone.localtime(at).date()


def _book(job: Job, amount: str, at: datetime, *, kind: str = CostKind.REWARD, **fields: Any) -> CostEntry:
    return CostEntry.objects.create(
        job=job,
        marketplace=job.marketplace,
        kind=kind,
        status=CostStatus.CHARGED,
        amount=D(amount),
        currency=job.currency,
        idempotency_key=f"pin:{CostEntry.objects.count()}",
        created_at=at,
        **fields,
    )


@pytest.fixture
def ledger() -> dict[str, Job]:
    usd = JobFactory(name="USD pool", currency="USD", marketplace="internal")
    usd2 = JobFactory(name="USD pool 2", currency="USD", marketplace="internal")
    eur = JobFactory(name="EUR pool", currency="EUR", marketplace="internal")
    turk = JobFactory(name="Turk job", currency="USD", marketplace="mturk")
    _book(usd, "1.25", NOW - timedelta(hours=1))
    _book(usd, "2", NOW - timedelta(days=3))
    _book(turk, "0.5", NOW - timedelta(days=3))
    _book(turk, "0.1", NOW - timedelta(days=3), kind=CostKind.MARKETPLACE_FEE)
    _book(usd2, "0.25", NOW - timedelta(days=5))
    wrong = _book(eur, "10", NOW - timedelta(days=10))
    _book(eur, "-10", NOW - timedelta(days=10), kind=CostKind.REVERSAL, reverses=wrong)
    _book(eur, "4.5", NOW - timedelta(days=10))
    _book(usd, "7", NOW - timedelta(days=59, hours=23))  # inside the last 60 days
    _book(usd, "100", NOW - timedelta(days=60, hours=1))  # outside them
    _book(eur, "3", NOW - timedelta(days=200))
    return {"usd": usd, "usd2": usd2, "eur": eur, "turk": turk}


def _series(*rows: tuple[str, datetime, str]) -> dict[str, list[tuple[date, Decimal]]]:
    """Spend per currency and day of ``(currency, booked at, amount)`` rows, added up by hand."""
    sums: dict[str, dict[date, Decimal]] = {}
    for currency, at, amount in rows:
        days = sums.setdefault(currency, {})
        days[_day(at)] = days.get(_day(at), D(0)) + D(amount)
    return {currency: sorted(days.items()) for currency, days in sorted(sums.items())}


LAST_60_DAYS = [
    ("USD", NOW - timedelta(hours=1), "1.25"),
    ("USD", NOW - timedelta(days=3), "2.6"),
    ("USD", NOW - timedelta(days=5), "0.25"),
    ("EUR", NOW - timedelta(days=10), "4.5"),
    ("USD", NOW - timedelta(days=59, hours=23), "7"),
]


def test_spend_per_day_over_the_last_60_days_is_pinned(ledger: dict[str, Job]) -> None:
    spend = list_spend_over_time(days=60, now=NOW)

    assert spend == _series(*LAST_60_DAYS)
    assert list(spend) == ["EUR", "USD"]  # one series per currency, in currency order
    assert all(points == sorted(points) for points in spend.values())  # each series in day order
    assert list_spend_over_time(job=ledger["eur"], days=60, now=NOW) == {"EUR": _series(*LAST_60_DAYS)["EUR"]}


def test_spend_per_day_over_a_period_is_pinned(ledger: dict[str, Job]) -> None:
    period = Period(since=_day(NOW - timedelta(days=10)), until=_day(NOW - timedelta(days=3)))

    assert list_spend_over_time(period=period) == _series(*LAST_60_DAYS[1:4])
    everything = Period(since=_day(NOW - timedelta(days=1000)))
    assert list_spend_over_time(period=everything) == _series(
        *LAST_60_DAYS, ("USD", NOW - timedelta(days=60, hours=1), "100"), ("EUR", NOW - timedelta(days=200), "3")
    )


def test_spend_per_marketplace_in_a_period_is_pinned(ledger: dict[str, Job]) -> None:
    period = Period(since=_day(NOW - timedelta(days=10)), until=_day(NOW - timedelta(days=3)))

    rows = [(r.marketplace, r.currency, r.total, r.jobs) for r in list_spend_by_marketplace_in_period(period)]

    assert rows == [
        ("internal", "EUR", D("4.5"), 1),
        ("internal", "USD", D("2.25"), 2),
        ("mturk", "USD", D("0.6"), 1),
    ]
    assert list_spend_by_marketplace_in_period(Period(since=date(2000, 1, 1), until=date(2000, 1, 2))) == []


def _figures(page: Any) -> dict[str, Any]:
    context = page.context
    return {
        "jobs": [(j.name, j.total, j.labels) for j in context["jobs"]],
        "by_marketplace": [(name, r.currency, r.total, r.jobs) for name, r in context["by_marketplace"]],
        "charts": [str(chart) for chart in context["spend_charts"]],
    }


def test_the_dashboard_shows_the_pinned_figures(finance_client: Client, ledger: dict[str, Job]) -> None:
    page = finance_client.get(reverse("admin:tasks_finance_dashboard"))

    assert page.status_code == 200
    figures = _figures(page)
    assert figures["jobs"] == [
        ("Turk job", D("0.6"), 0),
        ("EUR pool", D("7.5"), 0),
        ("USD pool 2", D("0.25"), 0),
        ("USD pool", D("110.25"), 0),
    ]
    assert figures["by_marketplace"] == [
        ("Internal worker pool", "EUR", D("7.5"), 1),
        ("Internal worker pool", "USD", D("110.5"), 2),
        ("Amazon Mechanical Turk", "USD", D("0.6"), 1),
    ]
    eur_chart, usd_chart = figures["charts"]
    assert 'aria-label="Spend per day (EUR)"' in eur_chart and 'aria-label="Spend per day (USD)"' in usd_chart
    for chart, points in zip(figures["charts"], _series(*LAST_60_DAYS).values(), strict=True):
        assert chart.count("<circle") == len(points)
        for day, total in points:
            assert f"<title>{day.isoformat()}: {total:.4f}</title>" in chart


def test_the_dashboard_over_a_period_shows_the_pinned_figures(finance_client: Client, ledger: dict[str, Job]) -> None:
    since, until = _day(NOW - timedelta(days=10)), _day(NOW - timedelta(days=3))

    page = finance_client.get(reverse("admin:tasks_finance_dashboard"), {"since": since, "until": until})

    assert page.status_code == 200
    figures = _figures(page)
    assert figures["jobs"] == [
        ("Turk job", D("0.6"), 0),
        ("EUR pool", D("4.5"), 0),
        ("USD pool 2", D("0.25"), 0),
        ("USD pool", D("2"), 0),
    ]
    assert figures["by_marketplace"] == [
        ("Internal worker pool", "EUR", D("4.5"), 1),
        ("Internal worker pool", "USD", D("2.25"), 2),
        ("Amazon Mechanical Turk", "USD", D("0.6"), 1),
    ]
    eur_chart, usd_chart = figures["charts"]
    assert f"<title>{_day(NOW - timedelta(days=10)).isoformat()}: 4.5000</title>" in eur_chart
    assert usd_chart.count("<circle") == 2 and ": 2.6000</title>" in usd_chart and ": 0.2500</title>" in usd_chart


# --- PostgreSQL: the plans ----------------------------------------------------------------------------------


def _plan_of(run: Callable[[], object], needle: str) -> str:
    """The plan PostgreSQL picks for the query ``run`` sends whose SQL contains ``needle``, with whole-table and
    bitmap scans and sorts made dear: on a test table of a few rows the cheapest plan is anything, so this asks
    which plan the query allows without reading the table whole or sorting its rows (what a big ledger needs)."""
    with CaptureQueriesContext(connection) as captured:
        run()
    (sql,) = [q["sql"] for q in captured.captured_queries if needle in q["sql"]]
    with transaction.atomic(), connection.cursor() as cursor:
        for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort"):
            cursor.execute(f"SET LOCAL {setting} = off")
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.postgres
@pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs PostgreSQL (EXPLAIN plans)")
@pytest.mark.parametrize("shape", ["last-60-days", "period"])
def test_spend_per_day_is_read_from_the_day_index_in_its_order(ledger: dict[str, Job], shape: str) -> None:
    period = Period(since=_day(NOW - timedelta(days=10)), until=_day(NOW - timedelta(days=3)))

    def run() -> object:
        return list_spend_over_time(period=period) if shape == "period" else list_spend_over_time(days=60)

    plan = _plan_of(run, "DATE_TRUNC")

    assert "Scan using costentry_day_spend_idx" in plan, plan  # the query's day is the index's
    assert "Index Cond: (((date_trunc('day'" in plan, plan  # read from the window's first day on
    assert "GroupAggregate" in plan and "Sort" not in plan, plan  # grouped in the index's (day, currency) order


@pytest.mark.postgres
@pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs PostgreSQL (EXPLAIN plans)")
def test_spend_per_marketplace_in_a_period_sorts_no_ledger_rows(ledger: dict[str, Job]) -> None:
    period = Period(since=_day(NOW - timedelta(days=10)), until=_day(NOW - timedelta(days=3)))

    plan = _plan_of(lambda: list_spend_by_marketplace_in_period(period), '"marketplace"')

    assert "HashAggregate" in plan and "Sort" not in plan, plan  # no distinct count to sort the rows for
