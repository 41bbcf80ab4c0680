"""Migration 0025's data step: a month's cap row keeps only its own currency's reservations (before 0023 every
job's reservations, euros included, were added to the month's only row)."""

from __future__ import annotations

import importlib
from decimal import Decimal

import pytest
from django.apps import apps
from django.utils import timezone

from tasks.models import BudgetReservation, MonthlyBudget
from tasks.services.budget import month_of
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db
step = importlib.import_module("tasks.migrations.0025_monthlybudget_reserved_per_currency")


def test_a_months_reserved_sum_is_recomputed_from_its_own_currencys_reservations() -> None:
    now = timezone.now()
    month = month_of(now)
    dollars, euros = JobFactory(currency="USD"), JobFactory(currency="EUR")
    for job, amount, key in ((dollars, "1.50", "u1"), (dollars, "-0.25", "u2"), (euros, "2.00", "e1")):
        BudgetReservation.objects.create(job=job, amount=Decimal(amount), key=key, month=month, created_at=now)
    # as the single pre-0023 row held it: every currency added together
    row = MonthlyBudget.objects.create(month=month, cap=Decimal("10"), reserved=Decimal("3.25"), currency="USD")

    step.recompute(apps, None)

    row.refresh_from_db()
    assert row.reserved == Decimal("1.25")


def test_reservations_made_before_the_cap_row_existed_are_not_added() -> None:
    """A cap set mid-month counted only later reservations; the step never raises a row above what it held."""
    now = timezone.now()
    month = month_of(now)
    dollars = JobFactory(currency="USD")
    BudgetReservation.objects.create(job=dollars, amount=Decimal("4"), key="before", month=month, created_at=now)
    BudgetReservation.objects.create(job=dollars, amount=Decimal("1"), key="after", month=month, created_at=now)
    row = MonthlyBudget.objects.create(month=month, cap=Decimal("10"), reserved=Decimal("1"), currency="USD")

    step.recompute(apps, None)

    row.refresh_from_db()
    assert row.reserved == Decimal("1")
