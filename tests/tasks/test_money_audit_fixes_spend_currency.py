"""Money audit, finding 9: the finance reports never add different currencies together. Spend per day is
one series per currency (one chart each on the dashboard), and spend per marketplace is grouped by the
currency each ledger row was booked in, not by the job's current currency."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tasks.models import CostKind, Job
from tasks.reports.selectors import get_budget_burn_down, list_spend_by_marketplace, list_spend_over_time
from tasks.services.ledger import record_cost
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db
D = Decimal


def _book(job: Job, amount: str, key: str, *, currency: str | None = None, marketplace: str = "internal") -> None:
    record_cost(
        job=job,
        kind=CostKind.REWARD,
        amount=D(amount),
        idempotency_key=key,
        marketplace=marketplace,
        currency=currency,
    )


def test_spend_per_day_is_one_series_per_currency() -> None:
    usd, eur = JobFactory(currency="USD"), JobFactory(currency="EUR")
    _book(usd, "10", "u1")
    _book(eur, "10", "e1")
    _book(eur, "2.50", "e2")
    today = timezone.now().date()

    assert list_spend_over_time(days=1) == {"EUR": [(today, D("12.50"))], "USD": [(today, D("10"))]}
    assert list_spend_over_time(job=eur, days=1) == {"EUR": [(today, D("12.50"))]}


def test_spend_by_marketplace_never_adds_currencies_together() -> None:
    """Each job books in its own currency (fixed once it leaves draft; USD on Ground Truth and MTurk)."""
    eur, usd = JobFactory(currency="EUR"), JobFactory(currency="USD")
    gt = JobFactory(currency="USD", marketplace="groundtruth")
    _book(eur, "3", "e1")
    _book(usd, "4", "u1")
    _book(gt, "5", "g1", marketplace="groundtruth")

    spend = {(r.marketplace, r.currency): (r.total, r.jobs) for r in list_spend_by_marketplace()}

    assert spend == {
        ("internal", "EUR"): (D("3"), 1),
        ("internal", "USD"): (D("4"), 1),
        ("groundtruth", "USD"): (D("5"), 1),
    }


def test_the_burn_down_counts_only_spend_in_the_currency_of_the_cap() -> None:
    job = JobFactory(currency="EUR", budget_cap=D("100"))
    _book(job, "30", "e1")
    _book(job, "7", "u1", currency="USD")

    assert [left for _, left in get_budget_burn_down(job)] == [D("70")]


def test_the_dashboard_draws_one_spend_chart_per_currency(finance_client: Client) -> None:
    usd, eur = JobFactory(currency="USD"), JobFactory(currency="EUR")
    _book(usd, "10", "u1")
    _book(eur, "10", "e1")

    page = finance_client.get(reverse("admin:tasks_finance_dashboard")).content.decode()

    assert 'aria-label="Spend per day (EUR)"' in page and 'aria-label="Spend per day (USD)"' in page
    assert "<title>" in page and ": 20" not in page  # no point adds the two currencies
    assert "<td>Internal worker pool</td><td>10.00 EUR</td><td>1</td>" in page
    assert "<td>Internal worker pool</td><td>10.00 USD</td><td>1</td>" in page


def test_the_dashboard_without_spend_shows_an_empty_chart(finance_client: Client) -> None:
    page = finance_client.get(reverse("admin:tasks_finance_dashboard")).content.decode()

    assert 'aria-label="Spend per day"' in page and "No data yet." in page
