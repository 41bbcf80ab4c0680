"""The cost ledger books each idempotency key once, refuses conflicting re-bookings, and never edits rows."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tasks.models import CostEntry, CostKind, CostStatus
from tasks.services.errors import ServiceError
from tasks.services.ledger import CostLine, LedgerConflict, record_cost, record_costs, reverse_cost
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def test_it_books_a_key_once_whatever_the_retries() -> None:
    job = JobFactory()
    first, created = record_cost(
        job=job, kind=CostKind.REWARD, amount=Decimal("0.05"), idempotency_key="k1", marketplace="internal"
    )
    again, created_again = record_cost(
        job=job, kind=CostKind.REWARD, amount=Decimal("0.05"), idempotency_key="k1", marketplace="internal"
    )
    assert created and not created_again
    assert again.pk == first.pk
    assert CostEntry.objects.count() == 1
    assert first.currency == job.currency and first.status == CostStatus.CHARGED


def test_it_refuses_a_key_rebooked_with_another_amount() -> None:
    job = JobFactory()
    record_cost(job=job, kind=CostKind.BONUS, amount=Decimal("1.00"), idempotency_key="b1", marketplace="mturk")
    with pytest.raises(LedgerConflict, match="b1"):
        record_cost(job=job, kind=CostKind.BONUS, amount=Decimal("2.00"), idempotency_key="b1", marketplace="mturk")
    assert list(CostEntry.objects.values_list("amount", flat=True)) == [Decimal("1.0000")]


def test_it_refuses_float_and_negative_amounts() -> None:
    job = JobFactory()
    with pytest.raises(TypeError):
        record_cost(job=job, kind=CostKind.REWARD, amount=0.05, idempotency_key="f", marketplace="internal")  # type: ignore[arg-type]
    with pytest.raises(ServiceError, match="reversal"):
        record_cost(job=job, kind=CostKind.REWARD, amount=Decimal("-1"), idempotency_key="n", marketplace="internal")
    assert not CostEntry.objects.exists()


def test_a_reversal_cancels_an_entry_once_and_rows_are_never_edited() -> None:
    job = JobFactory()
    entry, _ = record_cost(
        job=job, kind=CostKind.REWARD, amount=Decimal("0.30"), idempotency_key="r1", marketplace="internal"
    )
    reversal, created = reverse_cost(entry=entry, idempotency_key="r1:reversal", memo="rejected")
    again, created_again = reverse_cost(entry=entry, idempotency_key="r1:reversal-retry")
    assert created and not created_again and again.pk == reversal.pk
    assert reversal.amount == Decimal("-0.30") and reversal.reverses_id == entry.pk
    total = sum(CostEntry.objects.values_list("amount", flat=True))
    assert total == Decimal("0")
    entry.memo = "edited"
    with pytest.raises(RuntimeError, match="append-only"):
        entry.save()
    with pytest.raises(RuntimeError, match="append-only"):
        entry.delete()


def test_bulk_booking_skips_keys_already_booked() -> None:
    job = JobFactory()
    lines = [
        CostLine(
            job_id=job.pk,
            kind=CostKind.INTERNAL_PAY,
            amount=Decimal("0.05"),
            idempotency_key=f"p{i}",
            marketplace="internal",
        )
        for i in range(5)
    ]
    assert record_costs(lines[:3]) == 3
    assert record_costs(lines) == 2
    assert CostEntry.objects.count() == 5
