"""The read-only pre-check (``check_budget``, used by publishing and job edits) applies the rule a reservation
applies: the sum after the amount, at the reservation columns' 4 places, may reach a cap, not pass it. An amount
with more than 4 decimals the reservation accepts passes the pre-check; one it refuses fails it."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from tasks.models import Job
from tasks.services.budget import BudgetExceeded, check_budget, month_of, reserve_budget, set_monthly_cap
from tests.factories import JobFactory
from workforce.audit import Actor

pytestmark = pytest.mark.django_db
D = Decimal
ACCEPTED = D("0.70004999")  # 0.30 + this = 1.00004999, 1.0000 at 4 places: fills a 1.00 cap exactly
REFUSED = D("0.70005001")  # 0.30 + this = 1.00005001, 1.0001 at 4 places: passes a 1.00 cap


def _job_holding_030(actor: Actor, **fields: object) -> Job:
    job = JobFactory(**fields)
    reserve_budget(job=job, amount=D("0.30"), key="first", actor=actor)
    return job


def _precheck_passes(job: Job, amount: Decimal) -> bool:
    try:
        check_budget(job=job, amount=amount)
    except BudgetExceeded:
        return False
    return True


def _reservation_accepted(job: Job, amount: Decimal, actor: Actor) -> bool:
    try:
        reserve_budget(job=job, amount=amount, key=f"try:{amount}", actor=actor)
    except BudgetExceeded:
        return False
    return True


@pytest.mark.parametrize("amount, fits", [(ACCEPTED, True), (REFUSED, False)])
def test_the_job_cap_precheck_agrees_with_the_reservation_at_the_boundary(actor, amount, fits):
    job = _job_holding_030(actor, budget_cap=D("1.00"))
    assert _precheck_passes(job, amount) is fits
    assert _reservation_accepted(job, amount, actor) is fits
    assert Job.objects.get(pk=job.pk).budget_reserved == (D("1.0000") if fits else D("0.30"))


@pytest.mark.parametrize("amount, fits", [(ACCEPTED, True), (REFUSED, False)])
def test_the_monthly_cap_precheck_agrees_with_the_reservation_at_the_boundary(actor, amount, fits):
    set_monthly_cap(month=month_of(timezone.now()), cap=D("1.00"), actor=actor)
    job = _job_holding_030(actor, budget_cap=None)
    assert _precheck_passes(job, amount) is fits
    assert _reservation_accepted(job, amount, actor) is fits
    if not fits:
        with pytest.raises(BudgetExceeded, match="monthly cap"):
            check_budget(job=job, amount=amount)
