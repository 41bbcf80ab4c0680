"""Reviewing and paying MTurk work: approve, reject, override a rejection, bonuses, the auto-approval
guard. Every call's result and its ledger rows commit together; bonuses record their intent first."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Value
from django.utils import timezone

from tasks.models import (
    Assignment,
    AssignmentState,
    CostKind,
    CostStatus,
    JobBlock,
    MTurkBonus,
    MTurkBonusState,
    MTurkHit,
)
from tasks.services.errors import ServiceError
from tasks.services.ledger import record_cost
from tasks.services.mturk_common import MTURK, ledger_key, mturk_connector
from workforce.audit import Actor, record_audit_event
from workforce.marketplaces.base import MarketplaceError
from workforce.marketplaces.mturk import MTurkMarketplace, request_token
from workforce.marketplaces.mturk_fees import assignment_fee, bonus_fee

OVERRIDE_WINDOW = timedelta(days=30)


def _mturk_assignment(assignment: Assignment) -> Assignment:
    if assignment.marketplace != MTURK or not assignment.external_id:
        raise ServiceError(f"Assignment {assignment.pk} is not an MTurk assignment.")
    return Assignment.objects.select_related("hit", "job", "worker").get(pk=assignment.pk)


def book_approval_charges(*, assignment: Assignment) -> int:
    """Book the reward and MTurk's fee of an approved assignment as charged (idempotent; returns rows new)."""
    info = MTurkHit.objects.filter(hit_id=assignment.hit_id).first()
    reward = info.reward if info else assignment.reward
    fee = assignment_fee(
        reward,
        assignments_per_hit=info.max_assignments if info else assignment.hit.assignments_wanted,
        masters=info.masters if info else False,
    )
    booked = 0
    for kind, amount in ((CostKind.REWARD, reward), (CostKind.MARKETPLACE_FEE, fee)):
        _, created = record_cost(
            job=assignment.job,
            kind=kind,
            amount=amount,
            idempotency_key=ledger_key("approve", assignment.external_id, kind),
            marketplace=MTURK,
            status=CostStatus.CHARGED,
            hit=assignment.hit,
            assignment=assignment,
            worker=assignment.worker,
            reference=str(assignment.external_id),
        )
        booked += created
    return booked


def _set_state(assignment: Assignment, *, allowed: tuple[str, ...], target: str) -> bool:
    return bool(
        Assignment.objects.filter(pk=assignment.pk, state__in=allowed).update(state=target, reviewed_at=timezone.now())
    )


def approve_mturk_assignment(
    *, assignment: Assignment, actor: Actor, feedback: str = "", connector: MTurkMarketplace | None = None
) -> Assignment:
    assignment = _mturk_assignment(assignment)
    if assignment.state == AssignmentState.APPROVED:
        return assignment
    if assignment.state != AssignmentState.SUBMITTED:
        raise ServiceError(f"Assignment {assignment.pk} is {assignment.state}; only submitted work can be approved.")
    mturk_connector(connector).approve(str(assignment.external_id), feedback=feedback)
    with transaction.atomic():
        _set_state(assignment, allowed=(AssignmentState.SUBMITTED,), target=AssignmentState.APPROVED)
        book_approval_charges(assignment=assignment)
        record_audit_event(
            actor=actor,
            action="mturk.assignment_approved",
            object_type="assignment",
            object_id=assignment.pk,
            before={"state": assignment.state},
            after={"state": AssignmentState.APPROVED},
            reason=feedback,
        )
    assignment.refresh_from_db()
    return assignment


def reject_mturk_assignment(
    *, assignment: Assignment, actor: Actor, feedback: str, connector: MTurkMarketplace | None = None
) -> Assignment:
    assignment = _mturk_assignment(assignment)
    if not feedback.strip():
        raise ServiceError("Tell the worker why the work is rejected (MTurk shows them the feedback).")
    if assignment.state != AssignmentState.SUBMITTED:
        raise ServiceError(f"Assignment {assignment.pk} is {assignment.state}; only submitted work can be rejected.")
    mturk_connector(connector).reject(str(assignment.external_id), feedback=feedback)
    with transaction.atomic():
        _set_state(assignment, allowed=(AssignmentState.SUBMITTED,), target=AssignmentState.REJECTED)
        record_audit_event(
            actor=actor,
            action="mturk.assignment_rejected",
            object_type="assignment",
            object_id=assignment.pk,
            before={"state": assignment.state},
            after={"state": AssignmentState.REJECTED},
            reason=feedback,
        )
    assignment.refresh_from_db()
    return assignment


def override_mturk_rejection(
    *, assignment: Assignment, actor: Actor, feedback: str = "", connector: MTurkMarketplace | None = None
) -> Assignment:
    """Approve a rejected assignment (MTurk allows it within 30 days of the rejection); the pay is booked."""
    assignment = _mturk_assignment(assignment)
    if assignment.state != AssignmentState.REJECTED:
        raise ServiceError(f"Assignment {assignment.pk} is {assignment.state}, not rejected.")
    rejected_at = assignment.reviewed_at or assignment.submitted_at
    if rejected_at is None or timezone.now() - rejected_at > OVERRIDE_WINDOW:
        raise ServiceError("MTurk lets a rejection be overridden only within 30 days; this one is older.")
    mturk_connector(connector).override_rejection(str(assignment.external_id), feedback=feedback)
    with transaction.atomic():
        _set_state(assignment, allowed=(AssignmentState.REJECTED,), target=AssignmentState.APPROVED)
        book_approval_charges(assignment=assignment)
        record_audit_event(
            actor=actor,
            action="mturk.rejection_overridden",
            object_type="assignment",
            object_id=assignment.pk,
            before={"state": AssignmentState.REJECTED},
            after={"state": AssignmentState.APPROVED},
            reason=feedback,
        )
    assignment.refresh_from_db()
    return assignment


def _pay_bonus(bonus: MTurkBonus, *, actor: Actor, connector: MTurkMarketplace) -> bool:
    """SendBonus with the intent's token, then mark it sent and book it, together. Returns True when
    this call is the one that recorded it."""
    assignment = bonus.assignment
    connector.send_bonus(
        worker_id=bonus.worker.external_id,
        assignment_id=str(assignment.external_id),
        amount=bonus.amount,
        reason=bonus.reason,
        token=bonus.token,
    )
    return _record_bonus(bonus, actor=actor)


def _record_bonus(bonus: MTurkBonus, *, actor: Actor) -> bool:
    assignment = bonus.assignment
    with transaction.atomic():
        marked = MTurkBonus.objects.filter(pk=bonus.pk, state=MTurkBonusState.PENDING).update(
            state=MTurkBonusState.SENT, sent_at=timezone.now()
        )
        for kind, amount in ((CostKind.BONUS, bonus.amount), (CostKind.MARKETPLACE_FEE, bonus_fee(bonus.amount))):
            record_cost(
                job=bonus.job,
                kind=kind,
                amount=amount,
                idempotency_key=ledger_key("bonus", bonus.token, kind),
                marketplace=MTURK,
                status=CostStatus.CHARGED,
                hit=assignment.hit,
                assignment=assignment,
                worker=bonus.worker,
                reference=bonus.token,
            )
        if marked:
            record_audit_event(
                actor=actor,
                action="mturk.bonus_sent",
                object_type="assignment",
                object_id=assignment.pk,
                after={"amount": str(bonus.amount), "token": bonus.token},
                reason=bonus.reason,
            )
    return bool(marked)


def send_mturk_bonus(
    *,
    assignment: Assignment,
    amount: Decimal,
    reason: str,
    idempotency_key: str,
    actor: Actor,
    connector: MTurkMarketplace | None = None,
) -> MTurkBonus:
    """Pay a bonus once per ``idempotency_key``: the intent row (with its token) commits before SendBonus,
    so a retry, a crash or a second caller reuses the same token and MTurk pays it once."""
    connector = mturk_connector(connector)
    assignment = _mturk_assignment(assignment)
    if not isinstance(amount, Decimal) or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise ServiceError("A bonus is a positive amount of whole cents.")
    if assignment.state not in (AssignmentState.SUBMITTED, AssignmentState.APPROVED):
        raise ServiceError(f"Assignment {assignment.pk} is {assignment.state}; bonuses go to submitted work.")
    bonus, created = MTurkBonus.objects.get_or_create(
        idempotency_key=idempotency_key,
        defaults={
            "job": assignment.job,
            "assignment": assignment,
            "worker": assignment.worker,
            "amount": amount,
            "reason": reason,
            "token": request_token("bonus", idempotency_key),
            "created_at": timezone.now(),
        },
    )
    if not created and (bonus.assignment_id != assignment.pk or bonus.amount != amount):
        raise ServiceError(f"Bonus key {idempotency_key!r} was used for another bonus.")
    if bonus.state == MTurkBonusState.PENDING:
        _pay_bonus(bonus, actor=actor, connector=connector)
        bonus.refresh_from_db()
    return bonus


TOKEN_LIFETIME = timedelta(hours=23)  # MTurk remembers a UniqueRequestToken for 24 hours


def retry_pending_mturk_bonuses(*, actor: Actor, connector: MTurkMarketplace | None = None) -> int:
    """Bonuses whose intent was recorded but whose answer never was (a crash): send again with the same
    token while MTurk still remembers it. Older ones are not re-sent blindly: one MTurk lists as paid
    (ListBonusPayments, same amount and reason) is recorded, the others are flagged for a person."""
    connector = mturk_connector(connector)
    paid = 0
    pending = MTurkBonus.objects.filter(state=MTurkBonusState.PENDING).select_related(
        "assignment__hit", "job", "worker"
    )
    cutoff = timezone.now() - TOKEN_LIFETIME
    for bonus in pending.order_by("id"):
        if bonus.created_at >= cutoff:
            paid += _pay_bonus(bonus, actor=actor, connector=connector)
            continue
        payments = connector.list_bonus_payments(str(bonus.assignment.external_id))
        if (bonus.amount, bonus.reason) in payments:
            paid += _record_bonus(bonus, actor=actor)
            continue
        with transaction.atomic():
            record_audit_event(
                actor=actor,
                action="mturk.bonus_flagged",
                object_type="assignment",
                object_id=bonus.assignment_id,
                after={"amount": str(bonus.amount), "token": bonus.token},
                reason="Its token has expired and MTurk lists no such bonus; check before paying it again.",
            )
    return paid


@dataclass
class GuardResult:
    approved: list[int] = field(default_factory=list)
    flagged: list[int] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)


def guard_mturk_auto_approval(
    *, actor: Actor, margin: timedelta | None = None, connector: MTurkMarketplace | None = None
) -> GuardResult:
    """Submitted MTurk work whose auto-approval is less than ``margin`` away is decided now, by us: work of a
    worker blocked from the job is flagged for a person (an audit event) and the rest approved, so no money
    moves without a ledger row and no blocked worker's work is approved unseen."""
    connector = mturk_connector(connector)
    margin = margin if margin is not None else settings.MTURK_REVIEW_MARGIN
    now = timezone.now()
    # Due when submitted_at + the HIT's auto-approval delay - margin <= now (filtered in the database).
    # Work imported from results files has no MTurkHit row and is never touched here.
    due = Assignment.objects.filter(
        marketplace=MTURK,
        state=AssignmentState.SUBMITTED,
        submitted_at__lte=ExpressionWrapper(
            Value(now + margin) - F("hit__mturk__auto_approval_delay"), output_field=DateTimeField()
        ),
    ).select_related("hit__mturk", "job", "worker")
    blocked = set(JobBlock.objects.filter(lifted_at__isnull=True).values_list("job_id", "worker_id"))
    result = GuardResult()
    for assignment in due.order_by("submitted_at"):
        delay = assignment.hit.mturk.auto_approval_delay
        assert assignment.submitted_at is not None
        if (assignment.job_id, assignment.worker_id) in blocked:
            with transaction.atomic():
                record_audit_event(
                    actor=actor,
                    action="mturk.assignment_flagged",
                    object_type="assignment",
                    object_id=assignment.pk,
                    after={"auto_approval_at": (assignment.submitted_at + delay).isoformat()},
                    reason="The worker is blocked from this job; review before MTurk approves it automatically.",
                )
            result.flagged.append(assignment.pk)
            continue
        try:
            approve_mturk_assignment(assignment=assignment, actor=actor, connector=connector)
        except (MarketplaceError, ServiceError) as error:
            result.failed.append((assignment.pk, str(error)))
            continue
        result.approved.append(assignment.pk)
    return result
