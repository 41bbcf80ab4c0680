"""The finance dashboard's figures for a period, spend per job and per marketplace, are added up in the database:
exact ``Decimal`` sums equal to the ledger's rows added up by hand (reversals, several currencies, amounts a float
cannot hold), the same number of queries for 3 jobs as for 30, and (PostgreSQL) one row per marketplace and
currency back from the database, not one per job."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tasks.models import CostEntry, CostKind, CostStatus
from tasks.reports.period import Period, list_job_spend_in_period, list_spend_by_marketplace_in_period
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db
D = Decimal
NOW = timezone.now()
# (currency, marketplace) of job n: n % 5.
KINDS = [("USD", "internal"), ("EUR", "internal"), ("USD", "mturk"), ("GBP", "internal"), ("USD", "groundtruth")]
# Amounts whose binary floats are inexact, a large one beside tiny ones, and a reversal of each third.
AMOUNTS = [D("0.1"), D("0.2"), D("0.0001"), D("1234567.8901"), D("0.3333"), D("19.99")]
PERIOD = Period(since=timezone.localdate(NOW - timedelta(days=20)), until=timezone.localdate(NOW - timedelta(days=1)))


def _day(at: datetime) -> date:
    return timezone.localtime(at).date()


def _book(jobs: int) -> list[tuple[int, str, str, Decimal, datetime]]:
    """Ledger rows of ``jobs`` jobs, in and out of ``PERIOD``; returns them as (job, marketplace, currency,
    amount, booked at), for the expected figures to be added up from."""
    booked: list[tuple[int, str, str, Decimal, datetime]] = []
    for n in range(jobs):
        currency, marketplace = KINDS[n % len(KINDS)]
        job = JobFactory(name=f"job {n}", currency=currency, marketplace=marketplace)
        for i, amount in enumerate(AMOUNTS):
            at = NOW - timedelta(days=2 + (i * 7 + n) % 30)  # some rows fall before the period
            row = CostEntry.objects.create(
                job=job,
                marketplace=marketplace,
                kind=CostKind.REWARD,
                status=CostStatus.CHARGED,
                amount=amount,
                currency=currency,
                idempotency_key=f"grouped:{job.pk}:{i}",
                created_at=at,
            )
            booked.append((job.pk, marketplace, currency, amount, at))
            if i % 3 == 0:
                CostEntry.objects.create(
                    job=job,
                    marketplace=marketplace,
                    kind=CostKind.REVERSAL,
                    status=CostStatus.CHARGED,
                    amount=-amount,
                    currency=currency,
                    idempotency_key=f"grouped:{job.pk}:{i}:reversal",
                    reverses=row,
                    created_at=at + timedelta(days=1),  # may fall in the period when the row did not
                )
                booked.append((job.pk, marketplace, currency, -amount, at + timedelta(days=1)))
    return booked


def _in_period(booked: list[tuple[int, str, str, Decimal, datetime]]) -> list[tuple[int, str, str, Decimal]]:
    assert PERIOD.since is not None and PERIOD.until is not None
    return [(job, m, c, amount) for job, m, c, amount, at in booked if PERIOD.since <= _day(at) <= PERIOD.until]


def test_spend_per_marketplace_in_a_period_is_the_rows_added_up_exactly() -> None:
    rows = _in_period(_book(10))
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    jobs: dict[tuple[str, str], set[int]] = defaultdict(set)
    for job, marketplace, currency, amount in rows:
        totals[marketplace, currency] += amount
        jobs[marketplace, currency].add(job)

    spend = list_spend_by_marketplace_in_period(PERIOD)

    assert [(r.marketplace, r.currency, r.total, r.jobs) for r in spend] == [
        (m, c, totals[m, c], len(jobs[m, c])) for m, c in sorted(totals)
    ]
    assert all(type(r.total) is Decimal and r.total.as_tuple().exponent == -4 for r in spend)  # 4 places, as before
    assert {r.currency for r in spend} == {"USD", "EUR", "GBP"}


def test_spend_per_job_in_a_period_is_the_rows_added_up_exactly() -> None:
    rows = _in_period(_book(10))
    totals: dict[int, Decimal] = defaultdict(Decimal)
    for job, _, _, amount in rows:
        totals[job] += amount

    spend = list_job_spend_in_period(PERIOD)

    assert [(c.job, c.total) for c in spend] == sorted(totals.items(), reverse=True)  # most recent job first
    assert all(type(c.total) is Decimal and c.cost_per_label is None for c in spend)
    assert {c.currency for c in spend} == {"USD", "EUR", "GBP"}


def _queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as captured:
        list_spend_by_marketplace_in_period(PERIOD)
        list_job_spend_in_period(PERIOD)
    with CaptureQueriesContext(connection) as page:
        response = client.get(reverse("admin:tasks_finance_dashboard"), {"since": PERIOD.since, "until": PERIOD.until})
    assert response.status_code == 200
    return len(captured) * 1000 + len(page)


def test_the_period_figures_read_as_many_queries_for_30_jobs_as_for_3(finance_client: Client) -> None:
    _book(3)
    few = _queries(finance_client)
    _book(30)
    assert _queries(finance_client) == few


@pytest.mark.postgres
@pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs PostgreSQL (EXPLAIN ANALYZE)")
def test_spend_per_marketplace_returns_a_row_per_marketplace_and_currency_not_per_job() -> None:
    _book(30)
    with CaptureQueriesContext(connection) as captured:
        spend = list_spend_by_marketplace_in_period(PERIOD)
    (sql,) = [q["sql"] for q in captured.captured_queries]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        (plan,) = cursor.fetchone()
    top = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
    assert top["Actual Rows"] == len(spend) == len(KINDS)  # 5 rows back for 30 jobs
