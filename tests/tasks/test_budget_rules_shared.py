"""The budget rules a bonus meets (job cap, monthly cap in the job's currency, reservation keys, 50/80/100%
alerts and their emails) live once in ``tasks.services.budget``: a bulk run (``pay_bonuses``, through
``budget_bulk``) and ``pay_bonus`` one at a time refuse with the same sentences at the same boundaries and
write the same rows, events and emails."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from tasks.models import Job, MonthlyBudget
from tasks.services.bonuses_bulk import BonusRequest
from tasks.services.budget import (
    ReservationConflict,
    alerts_reached,
    month_of,
    reservation_conflict,
    reserve_budget,
    within_cap,
)
from tests.conftest import SYSTEM
from tests.tasks.finance_helpers import submit_work
from tests.tasks.test_pay_bonuses_bulk import in_bulk, one_by_one, rolled_back

pytestmark = pytest.mark.django_db
D = Decimal


def _same_both_ways(bonuses: list[BonusRequest], capture: Any) -> tuple[list[Any], dict[str, Any]]:
    old, old_state = rolled_back(lambda: one_by_one(bonuses), capture)
    new, new_state = rolled_back(lambda: in_bulk(bonuses), capture)
    assert new == old
    assert new_state == old_state
    return new, new_state


def test_a_bulk_run_meets_the_job_cap_at_the_same_4_place_boundary_with_the_same_sentence_and_alerts(
    make_published_job, make_worker, settings, django_capture_on_commit_callbacks
) -> None:
    settings.FINANCE_ALERT_EMAILS = ["finance@example.com"]
    job = make_published_job(items=3, redundancy=1, reward=D("0.05"))
    worker = make_worker()
    work = submit_work(job, worker)
    spent_so_far = Job.objects.get(pk=job.pk).budget_reserved
    Job.objects.filter(pk=job.pk).update(budget_cap=spent_so_far + D("0.9999"))
    job.refresh_from_db()

    def bonus(amount: str, key: str) -> BonusRequest:
        return BonusRequest(job=job, worker=worker, amount=D(amount), reason="Good", key=key, assignment=work)

    outcomes, state = _same_both_ways(
        [bonus("0.3333", "a"), bonus("0.3333", "b"), bonus("0.3334", "c"), bonus("0.3333", "d"), bonus("0.0001", "e")],
        django_capture_on_commit_callbacks,
    )
    assert [o[1] for o in outcomes] == [True, True, "BudgetExceeded", True, "BudgetExceeded"]
    assert "budget cap is left" in outcomes[2][2] and "needs 0.33 USD but only 0.33 of its" in outcomes[2][2]
    assert state["jobs"] == [(job.pk, spent_so_far + D("0.9999"))]  # filled to the cap exactly
    cap = spent_so_far + D("0.9999")
    assert state["alerts"] == [(job.pk, 50, D("0.6666"), cap), (job.pk, 80, D("0.9999"), cap)]
    assert [subject for subject, *_ in state["mail"]] == [
        f"Job {job.pk} ({job.name}) has spent 50% of its budget",
        f"Job {job.pk} ({job.name}) has spent 80% of its budget",
    ]


def test_a_bulk_run_meets_the_monthly_cap_of_the_jobs_currency_only_with_the_same_sentence(
    make_published_job, make_worker, django_capture_on_commit_callbacks
) -> None:
    dollars = make_published_job(items=2, redundancy=1, reward=D("0.05"))
    euros = make_published_job(items=2, redundancy=1, reward=D("0.05"))
    worker = make_worker()
    on_dollars, on_euros = submit_work(dollars, worker), submit_work(euros, worker)
    Job.objects.filter(pk=euros.pk).update(currency="EUR")
    euros.refresh_from_db()
    MonthlyBudget.objects.create(month=month_of(timezone.now()), cap=D("0.60"), currency="USD")

    def bonus(job: Job, amount: str, key: str) -> BonusRequest:
        work = on_dollars if job == dollars else on_euros
        return BonusRequest(job=job, worker=worker, amount=D(amount), reason="Good", key=key, assignment=work)

    outcomes, state = _same_both_ways(
        [
            bonus(dollars, "0.25", "m1"),
            bonus(euros, "5.00", "m2"),  # the dollar cap does not hold a euro job
            bonus(dollars, "0.25", "m3"),
            bonus(dollars, "0.25", "m4"),  # 0.75 > 0.60
            bonus(dollars, "0.10", "m5"),  # fills it exactly
        ],
        django_capture_on_commit_callbacks,
    )
    assert [o[1] for o in outcomes] == [True, True, True, "BudgetExceeded", True]
    assert outcomes[3][2] == (
        "This needs 0.25 USD but only 0.10 of the 0.60 USD monthly cap for "
        f"{month_of(timezone.now()):%Y-%m} is left; raise the monthly cap or wait."
    )
    assert state["months"] == [("USD", D("0.60"))]


def test_a_key_reserved_outside_bonuses_is_refused_in_bulk_as_reserve_budget_refuses_it(
    make_published_job, make_worker, django_capture_on_commit_callbacks
) -> None:
    job, other = make_published_job(items=2, redundancy=1), make_published_job(items=1, redundancy=1)
    worker = make_worker()
    work = submit_work(job, worker)
    reserve_budget(job=other, amount=D("0.20"), key="bonus:elsewhere:reserve", actor=SYSTEM, reason="bonus")
    bonuses = [BonusRequest(job=job, worker=worker, amount=D("0.20"), reason="Good", key="elsewhere", assignment=work)]
    outcomes, _ = _same_both_ways(bonuses, django_capture_on_commit_callbacks)
    with pytest.raises(ReservationConflict) as single:
        reserve_budget(job=job, amount=D("0.20"), key="bonus:elsewhere:reserve", actor=SYSTEM)
    assert outcomes == [("refused", "ReservationConflict", str(single.value))]


def test_the_rules_themselves() -> None:
    assert within_cap(None, D("5"), D("1000"))
    assert within_cap(D("1.0000"), D("0.6667"), D("0.3333"))
    assert within_cap(D("1.0000"), D("0.6667"), D("0.33334"))  # 4 places, as the columns store it
    assert not within_cap(D("1.0000"), D("0.6667"), D("0.33335"))
    assert not within_cap(D("0"), D("0"), D("0.0001"))
    assert alerts_reached(spent=D("8"), cap=D("10"), done={50}) == [80]
    assert alerts_reached(spent=D("10"), cap=D("10"), done=set()) == [50, 80, 100]
    assert reservation_conflict(key="k", held=(1, D("0.20")), job_id=1, amount=D("0.20000")) is None
    refusal = reservation_conflict(key="k", held=(1, D("0.20")), job_id=2, amount=D("0.20"))
    assert isinstance(refusal, ReservationConflict) and "reserved 0.20 for job 1" in str(refusal)
