"""Money audit, finding 1: a pending MTurk bonus is never sent again once MTurk may have forgotten its
UniqueRequestToken (24 hours). Every path (the reviewer's ``pay_bonus``, the task, the retry sweep) checks
ListBonusPayments instead: a payment found there is recorded, otherwise the intent is flagged for a person.
Against the local MTurk stand-in, which forgets a token when the test drops it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tasks.models import Assignment, CostKind, MTurkBonus, MTurkBonusState
from tasks.services.errors import ServiceError
from tasks.services.mturk_review import BonusNeedsReview, retry_pending_mturk_bonuses
from tasks.services.review import BonusNotConfirmed, pay_bonus
from tests.marketplaces.mturk_standin import FaultPlan, MTurkStandIn
from tests.tasks.services.mturk_helpers import ACTOR, ledger_total, submitted_mturk_assignments
from workforce.marketplaces.mturk import MTurkMarketplace
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
SEND = frozenset({"SendBonus"})


def _lost_reply() -> FaultPlan:
    """SendBonus commits on MTurk but its reply is lost (botocore's own retries then meet 5xx answers)."""
    return FaultPlan(rate=1.0, kinds=("lost",) + ("5xx",) * 50, operations=SEND)


def _submitted(mturk: MTurkMarketplace, standin: MTurkStandIn) -> list[Assignment]:
    return submitted_mturk_assignments(mturk, standin, workers=1)


def _a_day_later(standin: MTurkStandIn, key: str) -> None:
    """The intent is 25 hours old and MTurk has forgotten its token."""
    MTurkBonus.objects.filter(idempotency_key=key).update(created_at=timezone.now() - timedelta(hours=25))
    standin.state.tokens = {k: v for k, v in standin.state.tokens.items() if not k.startswith("bonus:")}


def _pay(assignment: Assignment, key: str = "b1") -> bool:
    return pay_bonus(
        job=assignment.job,
        worker=assignment.worker,
        amount=Decimal("1.00"),
        reason="great",
        key=key,
        actor=ACTOR,
        assignment=assignment,
    )


def test_a_retry_a_day_after_a_lost_reply_records_the_bonus_mturk_paid_and_does_not_pay_it_again(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    (assignment,) = _submitted(mturk, standin)
    with standin.faults(_lost_reply()), pytest.raises(BonusNotConfirmed):
        _pay(assignment)
    assert len(standin.state.bonuses) == 1
    _a_day_later(standin, "b1")

    _pay(assignment)

    assert len(standin.state.bonuses) == 1  # paid once, on MTurk
    assert MTurkBonus.objects.get(idempotency_key="b1").state == MTurkBonusState.SENT
    assert ledger_total(kind=CostKind.BONUS) == Decimal("1.00")
    assert ledger_total() == standin.state.total_charged()
    assert _pay(assignment) is False  # and settled: a later retry changes nothing
    assert len(standin.state.bonuses) == 1


def test_a_retry_a_day_later_of_a_bonus_mturk_never_paid_is_flagged_and_not_sent(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    (assignment,) = _submitted(mturk, standin)
    # Every SendBonus attempt fails before MTurk commits anything.
    with standin.faults(FaultPlan(rate=1.0, kinds=("5xx",), operations=SEND)), pytest.raises(BonusNotConfirmed):
        _pay(assignment)
    assert standin.state.bonuses == []
    _a_day_later(standin, "b1")

    with pytest.raises(BonusNeedsReview, match="Check the worker's bonuses on MTurk") as refused:
        _pay(assignment)

    assert isinstance(refused.value, ServiceError)  # the API and the admin show it as a refusal
    assert standin.state.bonuses == []
    assert MTurkBonus.objects.get(idempotency_key="b1").state == MTurkBonusState.PENDING
    assert ledger_total(kind=CostKind.BONUS) == 0
    flagged = AuditEvent.objects.get(action="mturk.bonus_flagged")
    assert flagged.object_id == str(assignment.pk) and flagged.after["key"] == "b1"


def test_a_retry_within_the_token_window_still_sends_with_the_same_token(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    (assignment,) = _submitted(mturk, standin)
    with standin.faults(_lost_reply()), pytest.raises(BonusNotConfirmed):
        _pay(assignment)
    MTurkBonus.objects.filter(idempotency_key="b1").update(created_at=timezone.now() - timedelta(hours=22))

    _pay(assignment)

    assert len(standin.state.bonuses) == 1  # MTurk recognised the token
    assert MTurkBonus.objects.get(idempotency_key="b1").state == MTurkBonusState.SENT
    assert ledger_total() == standin.state.total_charged()


def test_the_sweep_needs_one_payment_per_old_bonus_alike_on_one_assignment(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    (assignment,) = _submitted(mturk, standin)
    old = timezone.now() - timedelta(hours=30)
    for key in ("x1", "x2"):  # two bonuses of the same amount and reason, on one assignment
        MTurkBonus.objects.create(
            job=assignment.job,
            assignment=assignment,
            worker=assignment.worker,
            amount=Decimal("0.50"),
            reason="Streak",
            idempotency_key=key,
            token=f"bonus:{key}",
            created_at=old,
        )
    mturk.send_bonus(  # only the first reached MTurk before the crash
        worker_id=assignment.worker.external_id,
        assignment_id=str(assignment.external_id),
        amount=Decimal("0.50"),
        reason="Streak",
        token="bonus:x1",
    )
    standin.state.tokens.clear()

    assert retry_pending_mturk_bonuses(actor=ACTOR, connector=mturk) == 1

    states = dict(MTurkBonus.objects.values_list("idempotency_key", "state"))
    assert sorted(states.values()) == [MTurkBonusState.PENDING, MTurkBonusState.SENT]
    assert len(standin.state.bonuses) == 1
    assert ledger_total() == standin.state.total_charged()
    assert AuditEvent.objects.filter(action="mturk.bonus_flagged").count() == 1


def test_the_sweep_lists_each_assignments_payments_once(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    (assignment,) = _submitted(mturk, standin)
    old = timezone.now() - timedelta(hours=30)
    for n, key in enumerate(("y1", "y2", "y3")):  # three old intents on one assignment, all paid on MTurk
        MTurkBonus.objects.create(
            job=assignment.job,
            assignment=assignment,
            worker=assignment.worker,
            amount=Decimal("0.25") * (n + 1),
            reason="Streak",
            idempotency_key=key,
            token=f"bonus:{key}",
            created_at=old,
        )
        mturk.send_bonus(
            worker_id=assignment.worker.external_id,
            assignment_id=str(assignment.external_id),
            amount=Decimal("0.25") * (n + 1),
            reason="Streak",
            token=f"bonus:{key}",
        )
    standin.state.tokens.clear()
    listed_before = standin.state.calls.get("ListBonusPayments", 0)
    assert retry_pending_mturk_bonuses(actor=ACTOR, connector=mturk) == 3
    assert standin.state.calls.get("ListBonusPayments", 0) - listed_before == 1
    assert ledger_total() == standin.state.total_charged()
