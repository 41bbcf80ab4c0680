"""One review-and-pay path: ``tasks.services.review`` on MTurk work (against the local stand-in), with the
approval, the auto-approval guard and collect all booking an assignment's reward and fee once, bonuses
sent once per key, and rejections releasing their reservation."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from tasks.models import Assignment, AssignmentState, CostEntry, CostKind, CostStatus, MTurkBonus, MTurkBonusState
from tasks.services.errors import InvalidTransition, ServiceError
from tasks.services.mturk_collect import collect_mturk_work
from tasks.services.mturk_review import guard_mturk_auto_approval, request_mturk_bonus
from tasks.services.review import approve_assignment, override_rejection, pay_bonus, reject_assignment
from tasks.services.review_batch import approve_assignments
from tests.marketplaces.mturk_standin import FaultPlan, MTurkStandIn
from tests.tasks.services.mturk_helpers import ACTOR, ledger_total, submitted_mturk_assignments
from workforce.marketplaces.mturk import MTurkMarketplace, request_token
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db


def _submitted(mturk: MTurkMarketplace, standin: MTurkStandIn) -> list[Assignment]:
    return submitted_mturk_assignments(mturk, standin, workers=2)


def _charges(assignment: Assignment) -> list[tuple[str, Decimal, str]]:
    rows = CostEntry.objects.filter(assignment=assignment).order_by("kind")
    return list(rows.values_list("kind", "amount", "status"))


ONCE = [(CostKind.MARKETPLACE_FEE, Decimal("0.01"), CostStatus.CHARGED), (CostKind.REWARD, Decimal("0.05"), "charged")]


def test_an_approval_then_collect_seeing_it_approved_books_reward_and_fee_once(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    first, _ = _submitted(mturk, standin)
    approved = approve_assignment(assignment=first, actor=ACTOR, feedback="Thanks")
    assert approved.state == AssignmentState.APPROVED
    assert standin.state.assignments[str(first.external_id)]["AssignmentStatus"] == "Approved"
    assert standin.state.calls.get("ApproveAssignment") == 1
    result = collect_mturk_work(actor=ACTOR, connector=mturk)  # MTurk now lists it as Approved
    assert result.charges_booked == 0
    assert _charges(first) == ONCE
    event = AuditEvent.objects.get(action="assignment.approved")
    assert event.object_id == str(first.pk) and event.after["paid"] == "0.0600" and event.reason == "Thanks"
    with pytest.raises(InvalidTransition, match="approved"):
        approve_assignment(assignment=first, actor=ACTOR)
    assert standin.state.calls.get("ApproveAssignment") == 1 and _charges(first) == ONCE
    # The charge replaced one committed slot of the HIT: the ledger still holds what MTurk took, once.
    assert ledger_total(kind=CostKind.REVERSAL) == Decimal("-0.06")
    assert ledger_total() == standin.state.total_charged()


def test_mturk_auto_approval_seen_by_collect_then_our_approval_books_once(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    first, _ = _submitted(mturk, standin)
    standin.state.assignments[str(first.external_id)]["AssignmentStatus"] = "Approved"
    assert collect_mturk_work(actor=ACTOR, connector=mturk).charges_booked == 2
    with pytest.raises(InvalidTransition):
        approve_assignment(assignment=first, actor=ACTOR)
    assert _charges(first) == ONCE


def test_the_guard_and_bulk_approval_share_the_same_rows(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    first, second = _submitted(mturk, standin)
    Assignment.objects.filter(pk=first.pk).update(submitted_at=timezone.now() - timedelta(days=2, hours=1))
    assert guard_mturk_auto_approval(actor=ACTOR, connector=mturk, margin=timedelta(hours=24)).approved == [first.pk]
    result = approve_assignments(job=first.job, actor=ACTOR)  # only the second is still submitted
    assert (result.approved, result.failed, result.paid) == (1, 0, Decimal("0.06"))
    collect_mturk_work(actor=ACTOR, connector=mturk)
    assert _charges(first) == ONCE and _charges(second) == ONCE
    assert ledger_total(kind__in=[CostKind.REWARD, CostKind.MARKETPLACE_FEE], assignment__isnull=False) == Decimal(
        "0.12"
    )
    assert AuditEvent.objects.filter(action="assignment.approved").count() == 2
    assert ledger_total() == standin.state.total_charged()


def test_rejecting_releases_the_reservation_and_books_nothing(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    first, _ = _submitted(mturk, standin)
    reserved = first.job.budget_reserved
    assert reserved > 0
    with pytest.raises(ServiceError, match="why"):
        reject_assignment(assignment=first, actor=ACTOR, feedback=" ")
    reject_assignment(assignment=first, actor=ACTOR, feedback="The label contradicts the instructions.")
    assert standin.state.assignments[str(first.external_id)]["RequesterFeedback"] == (
        "The label contradicts the instructions."
    )
    assert not CostEntry.objects.filter(assignment=first).exists()
    release = first.job.budget_reservations.get(key=f"assignment:{first.pk}:release")
    assert release.amount == Decimal("-0.06")  # one assignment's reward and fee
    # MTurk gave the slot's reward and fee back: one committed slot is reversed and the reservation follows.
    first.job.refresh_from_db()
    assert first.job.budget_reserved == reserved - Decimal("0.06") == ledger_total(job=first.job)
    assert ledger_total() == standin.state.total_charged()
    assert AuditEvent.objects.get(action="assignment.rejected").after["released"] == "0.0600"
    collect_mturk_work(actor=ACTOR, connector=mturk)  # MTurk lists it as Rejected: nothing booked or released
    assert Assignment.objects.get(pk=first.pk).state == AssignmentState.REJECTED
    assert not CostEntry.objects.filter(assignment=first).exists()
    assert ledger_total() == standin.state.total_charged() == reserved - Decimal("0.06")
    assert AuditEvent.objects.get(action="assignment.rejected").object_id == str(first.pk)
    override_rejection(assignment=first, actor=ACTOR, feedback="Our mistake")  # within MTurk's 30 days
    collect_mturk_work(actor=ACTOR, connector=mturk)
    assert _charges(first) == ONCE and ledger_total() == standin.state.total_charged() == reserved
    first.job.refresh_from_db()
    assert first.job.budget_reserved == reserved  # the override re-reserved what the rejection released


def _bonus(target: Assignment, **overrides: Any) -> bool:
    fields: dict[str, Any] = {
        "job": target.job,
        "worker": target.worker,
        "amount": Decimal("0.30"),
        "reason": "Careful work on hard items",
        "key": "streak-1",
        "actor": ACTOR,
        "assignment": target,
    }
    fields.update(overrides)
    return pay_bonus(**fields)


def test_a_bonus_is_sent_once_with_a_deterministic_token_and_booked_once_when_retried(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    first, _ = _submitted(mturk, standin)
    with standin.faults(FaultPlan(rate=1.0, kinds=("lost",), operations=frozenset({"SendBonus"}))):
        assert _bonus(first) is True  # MTurk paid, the reply was lost; botocore's retry reuses the token
    assert _bonus(first) is False  # a caller's retry: nothing is sent, nothing booked again
    assert len(standin.state.bonuses) == 1
    assert standin.state.bonuses[0]["UniqueRequestToken"] == request_token("bonus", "streak-1")
    rows = dict(CostEntry.objects.filter(assignment=first).values_list("idempotency_key", "amount"))
    assert rows == {"bonus:streak-1": Decimal("0.30"), "bonus:streak-1:fee": Decimal("0.06")}
    assert ledger_total(kind=CostKind.BONUS, status=CostStatus.CHARGED) == Decimal("0.30")
    assert AuditEvent.objects.filter(action="bonus.paid").count() == 1
    assert first.job.budget_reservations.get(key="bonus:streak-1:reserve").amount == Decimal("0.36")
    assert ledger_total() == standin.state.total_charged()


def test_a_bonus_whose_caller_died_after_sendbonus_is_booked_once_on_retry(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    first, _ = _submitted(mturk, standin)
    bonus, created = request_mturk_bonus(
        assignment=first, amount=Decimal("0.30"), reason="Careful work on hard items", idempotency_key="k", actor=ACTOR
    )
    assert created and bonus.token == request_token("bonus", "k")
    mturk.send_bonus(  # the dead caller's SendBonus reached MTurk; its answer was never recorded
        worker_id=first.worker.external_id,
        assignment_id=str(first.external_id),
        amount=Decimal("0.30"),
        reason="Careful work on hard items",
        token=bonus.token,
    )
    assert _bonus(first, key="k") is False  # requested before: same token, MTurk answers "already paid"
    assert _bonus(first, key="k") is False
    assert len(standin.state.bonuses) == 1 and standin.state.calls["SendBonus"] == 2
    assert MTurkBonus.objects.get(idempotency_key="k").state == MTurkBonusState.SENT
    assert ledger_total(kind=CostKind.BONUS) == Decimal("0.30")
    assert ledger_total() == standin.state.total_charged()


def test_a_first_bonus_call_sends_once_and_reports_it(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    first, second = _submitted(mturk, standin)
    assert _bonus(first, assignment=None, key="b-none") is True  # the worker's latest assignment is used
    assert standin.state.calls.get("SendBonus") == 1
    assert _bonus(first, assignment=None, key="b-none") is False
    assert standin.state.calls.get("SendBonus") == 1
    with pytest.raises(ServiceError, match="another bonus"):
        _bonus(first, key="b-none", amount=Decimal("0.40"))
    with pytest.raises(ServiceError, match="another job or worker"):
        _bonus(first, assignment=second)


def test_a_bonus_over_the_budget_cap_sends_nothing(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    first, _ = _submitted(mturk, standin)
    job = first.job
    job.refresh_from_db()
    type(job).objects.filter(pk=job.pk).update(budget_cap=job.budget_reserved)
    with pytest.raises(ServiceError, match="budget cap"):
        _bonus(first)
    assert standin.state.calls.get("SendBonus") is None
    assert not MTurkBonus.objects.exists() and not CostEntry.objects.filter(kind=CostKind.BONUS).exists()


def test_a_marketplace_that_cannot_be_reached_leaves_the_work_submitted_and_unpaid(
    mturk: MTurkMarketplace, standin: MTurkStandIn, settings: Any
) -> None:
    first, _ = _submitted(mturk, standin)
    settings.MTURK_MAX_ATTEMPTS = 1
    with standin.faults(FaultPlan(rate=1.0, kinds=("5xx",), operations=frozenset({"ApproveAssignment"}))):
        with pytest.raises(ServiceError, match="MTurk refused the review"):
            approve_assignment(assignment=first, actor=ACTOR)
        result = approve_assignments(job=first.job, actor=ACTOR)
    assert (result.approved, result.failed) == (0, 2)
    assert Assignment.objects.get(pk=first.pk).state == AssignmentState.SUBMITTED
    assert not CostEntry.objects.filter(assignment__isnull=False).exists()
    assert not AuditEvent.objects.filter(action="assignment.approved").exists()
