"""An MTurk job is completed once every HIT has all its assignments, and its budget is settled once the
work is reviewed (it used to stay published for ever, holding its reservation until cancelled); a settle
keeps what a bonus still waiting for MTurk's answer will cost."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tasks.models import Assignment, BudgetReservation, Hit, Job, JobState, MTurkBonus, MTurkBonusState
from tasks.services.budget import job_spent, reserve_budget
from tasks.services.mturk_collect import collect_mturk_work
from tasks.services.mturk_review import approve_mturk_assignment, send_mturk_bonus
from tests.marketplaces.mturk_standin import FaultPlan, MTurkStandIn
from tests.tasks.services.mturk_helpers import ACTOR, published_mturk_job
from workforce.marketplaces.base import MarketplaceError
from workforce.marketplaces.mturk import MTurkMarketplace
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db


def _work_all(standin: MTurkStandIn, hit: Hit, first_worker: int) -> None:
    item = hit.items.get().external_id
    for n in range(hit.assignments_wanted):
        assignment = standin.state.accept(str(hit.external_id), f"AW{first_worker + n}")
        standin.state.external_submit([("assignmentId", assignment), (f"item:{item}", "pos")])


def test_the_job_completes_when_its_last_hit_is_full_and_its_budget_settles_after_review(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    job = published_mturk_job(mturk, 2)
    # held beyond the HITs' own cost (say for extra answers that were never asked for)
    reserve_budget(job=job, amount=Decimal("1.00"), key=f"job:{job.pk}:test-headroom", actor=ACTOR)
    first, second = Hit.objects.filter(job=job).order_by("id")
    _work_all(standin, first, 0)
    result = collect_mturk_work(actor=ACTOR, connector=mturk)
    job.refresh_from_db()
    assert result.jobs_completed == 0 and job.state == JobState.PUBLISHED  # one HIT still wants work

    _work_all(standin, second, 10)
    result = collect_mturk_work(actor=ACTOR, connector=mturk)
    job.refresh_from_db()
    assert result.jobs_completed == 1 and job.state == JobState.COMPLETED and job.completed_at is not None
    assert AuditEvent.objects.filter(action="job.completed", object_id=str(job.pk)).count() == 1
    assert job.budget_reserved == Decimal("0.36") + Decimal("1.00")  # submitted work is not yet reviewed

    for assignment in Assignment.objects.filter(job=job):
        approve_mturk_assignment(assignment=assignment, actor=ACTOR, connector=mturk)
    job = Job.objects.get(pk=job.pk)
    spent = job_spent(job)
    assert spent == Decimal("0.06") * Assignment.objects.filter(job=job).count() == Decimal("0.36")
    assert job.budget_reserved == spent  # what was reserved beyond the spend went back
    assert BudgetReservation.objects.filter(job=job, key__contains=":settle:").count() == 1
    # Collecting again completes nothing twice and releases nothing more.
    again = collect_mturk_work(actor=ACTOR, connector=mturk)
    assert again.jobs_completed == 0
    assert BudgetReservation.objects.filter(job=job, key__contains=":settle:").count() == 1


def _bonus(assignment: Assignment, mturk: MTurkMarketplace) -> None:
    amount, key = Decimal("0.50"), "k1"
    send_mturk_bonus(
        assignment=assignment, amount=amount, reason="Thanks", idempotency_key=key, actor=ACTOR, connector=mturk
    )


def test_settling_a_done_job_keeps_the_reservation_of_a_bonus_mturk_has_not_confirmed(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    job = published_mturk_job(mturk, 1)
    reserve_budget(job=job, amount=Decimal("1.00"), key=f"job:{job.pk}:test-headroom", actor=ACTOR)
    _work_all(standin, Hit.objects.get(job=job), 0)
    collect_mturk_work(actor=ACTOR, connector=mturk)
    first, *rest = Assignment.objects.filter(job=job).order_by("id")
    approve_mturk_assignment(assignment=first, actor=ACTOR, connector=mturk)
    down = FaultPlan(rate=1.0, kinds=("5xx",), operations=frozenset({"SendBonus"}))
    with standin.faults(down), pytest.raises(MarketplaceError):  # MTurk is down: the intent stays pending
        _bonus(first, mturk)
    assert MTurkBonus.objects.get(idempotency_key="k1").state == MTurkBonusState.PENDING
    for assignment in rest:  # the last review settles the done job
        approve_mturk_assignment(assignment=assignment, actor=ACTOR, connector=mturk)
    job = Job.objects.get(pk=job.pk)
    assert job.state == JobState.COMPLETED
    # the bonus (0.50) and its 20% fee (0.10) stay reserved above the spend; the test's headroom went back
    assert job.budget_reserved - job_spent(job) == Decimal("0.60")
    _bonus(first, mturk)  # the retry is confirmed: it is now spent, within what was held for it
    job = Job.objects.get(pk=job.pk)
    assert job_spent(job) == Decimal("0.18") + Decimal("0.60") <= job.budget_reserved
