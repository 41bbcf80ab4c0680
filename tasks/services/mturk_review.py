"""Reviewing and paying MTurk work: approve, reject, override a rejection, bonuses, the auto-approval
guard. Every call's result and its ledger rows commit together; bonuses record their intent first.

``tasks.services.review`` is the entry point every caller uses (admin, API, auto review, quality
policies); it delegates MTurk work here. The ledger keys are the ledger's one scheme
(``assignment_cost_key``, ``bonus_cost_key``), so whichever path sees an approval or a bonus first books
it and the others find it booked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, ExpressionWrapper, F, Sum, Value
from django.utils import timezone

from tasks.models import (
    Assignment,
    AssignmentState,
    CostEntry,
    CostKind,
    CostStatus,
    JobBlock,
    MTurkBonus,
    MTurkBonusState,
    MTurkHit,
)
from tasks.services.budget import after_review, check_budget_alerts, exact, reserve_budget
from tasks.services.errors import ServiceError
from tasks.services.ledger import (
    CostLine,
    assignment_cost_key,
    bonus_cost_key,
    record_cost,
    record_costs_once,
)
from tasks.services.mturk_common import MTURK, mturk_connector
from tasks.services.mturk_escrow import release_rejected_slot, settle_approved_slots
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
    """Book the reward and MTurk's fee of an approved assignment as charged (idempotent; returns rows new).

    The amounts are what MTurk charges for the HIT (its reward, assignments per HIT and Masters); the keys
    are the ledger's one scheme for assignments, so our approval, the guard and collect seeing MTurk's own
    auto-approval all book the same two rows, once."""
    return book_approval_charges_in_bulk(assignments=[assignment])


def book_approval_charges_in_bulk(*, assignments: Sequence[Assignment]) -> int:
    """``book_approval_charges`` for many approved assignments (``hit`` and ``job`` selected), set-based: one
    read of their HITs' MTurk rows, one of the keys booked, one insert of the rows missing; each assignment
    booked now then settles one committed slot of its HIT, in the order given (``settle_approved_slots``, also
    set-based). Returns the rows new."""
    infos = {m.hit_id: m for m in MTurkHit.objects.filter(hit_id__in={a.hit_id for a in assignments})}
    lines: list[CostLine] = []
    for assignment in assignments:
        info = infos.get(assignment.hit_id)
        reward = info.reward if info else assignment.reward
        fee = assignment_fee(
            reward,
            assignments_per_hit=info.max_assignments if info else assignment.hit.assignments_wanted,
            masters=info.masters if info else False,
        )
        lines += [
            CostLine(
                job_id=assignment.job_id,
                kind=kind,
                amount=amount,
                idempotency_key=assignment_cost_key(assignment.pk, part),
                marketplace=MTURK,
                status=CostStatus.CHARGED,
                currency=assignment.job.currency,
                hit_id=assignment.hit_id,
                assignment_id=assignment.pk,
                worker_id=assignment.worker_id,
                reference=str(assignment.external_id),
            )
            for kind, amount, part in ((CostKind.REWARD, reward, "reward"), (CostKind.MARKETPLACE_FEE, fee, "fee"))
        ]
    booked = record_costs_once(lines)
    settling = {line.assignment_id for line in booked}
    settle_approved_slots([assignment for assignment in assignments if assignment.pk in settling])
    return len(booked)


def _set_state(assignment: Assignment, *, allowed: tuple[str, ...], target: str) -> bool:
    return bool(
        Assignment.objects.filter(pk=assignment.pk, state__in=allowed).update(state=target, reviewed_at=timezone.now())
    )


def approve_mturk_assignment(
    *, assignment: Assignment, actor: Actor, feedback: str = "", connector: MTurkMarketplace | None = None
) -> Assignment:
    """ApproveAssignment, then (together) the state, the charges, the budget's true-up and the audit event.
    A crash after MTurk's reply leaves the work submitted here: a retry re-approves (MTurk answers "already
    approved", which the connector accepts) and collect books the same rows if it sees the approval first.
    Call it through ``tasks.services.review.approve_assignment``."""
    assignment = _mturk_assignment(assignment)
    if assignment.state == AssignmentState.APPROVED:
        return assignment
    if assignment.state != AssignmentState.SUBMITTED:
        raise ServiceError(f"Assignment {assignment.pk} is {assignment.state}; only submitted work can be approved.")
    mturk_connector(connector).approve(str(assignment.external_id), feedback=feedback)
    with transaction.atomic():
        moved = _set_state(assignment, allowed=(AssignmentState.SUBMITTED,), target=AssignmentState.APPROVED)
        book_approval_charges(assignment=assignment)
        if moved:
            after_review(job=assignment.job, actor=actor)  # job row before the audit head
            record_audit_event(
                actor=actor,
                action="assignment.approved",
                object_type="assignment",
                object_id=assignment.pk,
                before={"state": AssignmentState.SUBMITTED},
                after={"state": AssignmentState.APPROVED, "paid": str(_charged(assignment)), "marketplace": MTURK},
                reason=feedback,
            )
    assignment.refresh_from_db()
    return assignment


def _charged(assignment: Assignment) -> Decimal:
    total = CostEntry.objects.filter(assignment_id=assignment.pk).aggregate(total=Sum("amount"))["total"]
    return exact(total)


def reject_mturk_assignment(
    *, assignment: Assignment, actor: Actor, feedback: str, connector: MTurkMarketplace | None = None
) -> Assignment:
    """RejectAssignment with the worker's feedback, then (together) the state, the release of the work's slot
    (MTurk gives its reward and fee back: the slot's committed rows are reversed and their reservation
    released) and the audit event; nothing is charged. Call it through ``review.reject_assignment``."""
    assignment = _mturk_assignment(assignment)
    if not feedback.strip():
        raise ServiceError("Tell the worker why the work is rejected (MTurk shows them the feedback).")
    if assignment.state != AssignmentState.SUBMITTED:
        raise ServiceError(f"Assignment {assignment.pk} is {assignment.state}; only submitted work can be rejected.")
    mturk_connector(connector).reject(str(assignment.external_id), feedback=feedback)
    with transaction.atomic():
        if _set_state(assignment, allowed=(AssignmentState.SUBMITTED,), target=AssignmentState.REJECTED):
            released = release_rejected_slot(assignment=assignment, actor=actor)
            record_audit_event(
                actor=actor,
                action="assignment.rejected",
                object_type="assignment",
                object_id=assignment.pk,
                before={"state": AssignmentState.SUBMITTED},
                after={"state": AssignmentState.REJECTED, "marketplace": MTURK, "released": str(released)},
                reason=feedback,
            )
            after_review(job=assignment.job, actor=actor)
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
        after_review(job=assignment.job, actor=actor)  # re-reserves what the rejection released
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


TOKEN_LIFETIME = timedelta(hours=23)  # MTurk remembers a UniqueRequestToken for 24 hours


class BonusNeedsReview(ServiceError):
    """A pending bonus's token has expired and MTurk lists no matching payment: it is not sent again (a
    lost reply could mean it was paid), it is flagged for a person instead."""


def token_expired(bonus: MTurkBonus, *, now: datetime | None = None) -> bool:
    """Whether MTurk may have forgotten the intent's ``UniqueRequestToken`` (so re-sending could pay twice)."""
    return bonus.created_at < (now or timezone.now()) - TOKEN_LIFETIME


def _pay_bonus(
    bonus: MTurkBonus,
    *,
    actor: Actor,
    connector: MTurkMarketplace,
    now: datetime | None = None,
    listed: dict[str, list[tuple[Decimal, str]]] | None = None,
) -> bool:
    """The one way a PENDING intent is paid, whoever asks (the reviewer, the API, a task, the retry sweep).
    While MTurk remembers the token: SendBonus with it (MTurk pays once), then mark it sent and book it,
    together. Once the token may be forgotten it is never re-sent: a matching payment ListBonusPayments shows
    on the assignment is recorded; otherwise the intent is flagged for a person and ``BonusNeedsReview`` is
    raised. Returns True when this call is the one that recorded it. ``listed``: the payments already listed
    per assignment by this caller (the sweep lists each assignment once)."""
    assignment = bonus.assignment
    if token_expired(bonus, now=now):
        if _listed_as_paid(bonus, connector=connector, listed=listed):
            return _record_bonus(bonus, actor=actor)
        _flag_bonus(bonus, actor=actor)
        raise BonusNeedsReview(
            f"Bonus {bonus.idempotency_key!r} was requested at {bonus.created_at:%Y-%m-%d %H:%M} UTC; MTurk has "
            "forgotten its token and lists no such payment. Check the worker's bonuses on MTurk before paying again."
        )
    connector.send_bonus(
        worker_id=bonus.worker.external_id,
        assignment_id=str(assignment.external_id),
        amount=bonus.amount,
        reason=bonus.reason,
        token=bonus.token,
    )
    return _record_bonus(bonus, actor=actor)


def _listed_as_paid(
    bonus: MTurkBonus, *, connector: MTurkMarketplace, listed: dict[str, list[tuple[Decimal, str]]] | None = None
) -> bool:
    """Whether MTurk lists a payment of this amount and reason on the assignment that no other recorded
    (sent) intent accounts for: two bonuses alike on one assignment need two payments. A listing kept in
    ``listed`` may miss a bonus sent since; that can only flag an intent for a person, never pay twice."""
    external = str(bonus.assignment.external_id)
    if listed is None:
        payments = connector.list_bonus_payments(external)
    elif external in listed:
        payments = listed[external]
    else:
        payments = listed[external] = list(connector.list_bonus_payments(external))
    alike = sum(1 for payment in payments if payment == (bonus.amount, bonus.reason))
    recorded = MTurkBonus.objects.filter(
        assignment_id=bonus.assignment_id, amount=bonus.amount, reason=bonus.reason, state=MTurkBonusState.SENT
    ).count()
    return alike > recorded


def _flag_bonus(bonus: MTurkBonus, *, actor: Actor) -> None:
    with transaction.atomic():
        record_audit_event(
            actor=actor,
            action="mturk.bonus_flagged",
            object_type="assignment",
            object_id=bonus.assignment_id,
            after={"amount": str(bonus.amount), "token": bonus.token, "key": bonus.idempotency_key},
            reason="Its token has expired and MTurk lists no such bonus; check before paying it again.",
        )


def _record_bonus(bonus: MTurkBonus, *, actor: Actor) -> bool:
    """Mark the intent sent and book the bonus and its fee as charged, with the ledger's bonus keys."""
    assignment = bonus.assignment
    with transaction.atomic():
        marked = MTurkBonus.objects.filter(pk=bonus.pk, state=MTurkBonusState.PENDING).update(
            state=MTurkBonusState.SENT, sent_at=timezone.now()
        )
        fee = bonus_fee(bonus.amount)
        for kind, amount, part in ((CostKind.BONUS, bonus.amount, ""), (CostKind.MARKETPLACE_FEE, fee, "fee")):
            record_cost(
                job=bonus.job,
                kind=kind,
                amount=amount,
                idempotency_key=bonus_cost_key(bonus.idempotency_key, part),
                marketplace=MTURK,
                status=CostStatus.CHARGED,
                hit=assignment.hit,
                assignment=assignment,
                worker=bonus.worker,
                reference=bonus.token,
                memo=bonus.reason[:255],
            )
        if marked:
            record_audit_event(
                actor=actor,
                action="bonus.paid",
                object_type="worker",
                object_id=bonus.worker_id,
                after={
                    "job": bonus.job_id,
                    "assignment": assignment.pk,
                    "amount": str(bonus.amount),
                    "fee": str(fee),
                    "key": bonus.idempotency_key,
                    "token": bonus.token,
                },
                reason=bonus.reason,
            )
            check_budget_alerts(job=bonus.job, actor=actor)
    return bool(marked)


def request_mturk_bonus(
    *, assignment: Assignment, amount: Decimal, reason: str, idempotency_key: str, actor: Actor
) -> tuple[MTurkBonus, bool]:
    """Record the intent to pay a bonus (its deterministic token) and reserve it, with its fee, within the
    job's budget, together; ``(intent, created)``. A key used before returns its intent and reserves nothing."""
    assignment = _mturk_assignment(assignment)
    if not isinstance(amount, Decimal) or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        raise ServiceError("A bonus is a positive amount of whole cents.")
    if not reason.strip():
        raise ServiceError("Give the worker a reason for the bonus (MTurk shows it to them).")
    existing = MTurkBonus.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        if existing.assignment_id != assignment.pk or existing.amount != amount:
            raise ServiceError(f"Bonus key {idempotency_key!r} was used for another bonus.")
        return existing, False
    if assignment.state not in (AssignmentState.SUBMITTED, AssignmentState.APPROVED):
        raise ServiceError(f"Assignment {assignment.pk} is {assignment.state}; bonuses go to submitted work.")
    with transaction.atomic():
        reserve_budget(
            job=assignment.job,
            amount=amount + bonus_fee(amount),
            key=f"{bonus_cost_key(idempotency_key)}:reserve",
            actor=actor,
            reason="bonus",
        )
        bonus = MTurkBonus.objects.create(
            idempotency_key=idempotency_key,
            job=assignment.job,
            assignment=assignment,
            worker=assignment.worker,
            amount=amount,
            reason=reason,
            token=request_token("bonus", idempotency_key),
            created_at=timezone.now(),
        )
    return bonus, True


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
    so a retry, a crash or a second caller reuses the same token and MTurk pays it once. A retry after
    MTurk may have forgotten the token (``TOKEN_LIFETIME``) is reconciled with ListBonusPayments instead of
    sent again, or raises ``BonusNeedsReview`` (see ``_pay_bonus``). Call it through
    ``tasks.services.review.pay_bonus``."""
    connector = mturk_connector(connector)
    bonus, _ = request_mturk_bonus(
        assignment=assignment, amount=amount, reason=reason, idempotency_key=idempotency_key, actor=actor
    )
    if bonus.state == MTurkBonusState.PENDING:
        _pay_bonus(bonus, actor=actor, connector=connector)
        bonus.refresh_from_db()
    return bonus


def retry_pending_mturk_bonuses(*, actor: Actor, connector: MTurkMarketplace | None = None) -> int:
    """Bonuses whose intent was recorded but whose answer never was (a crash): each goes through
    ``_pay_bonus``, the same rule as every other path: sent again with the same token while MTurk still
    remembers it; an older one MTurk lists as paid (ListBonusPayments, same amount and reason) is recorded,
    the others are flagged for a person. Returns how many were recorded."""
    connector = mturk_connector(connector)
    paid = 0
    pending = MTurkBonus.objects.filter(state=MTurkBonusState.PENDING).select_related(
        "assignment__hit", "job", "worker"
    )
    now = timezone.now()
    listed: dict[str, list[tuple[Decimal, str]]] = {}  # each assignment's payments, listed once per sweep
    for bonus in pending.order_by("id"):
        try:
            paid += _pay_bonus(bonus, actor=actor, connector=connector, now=now, listed=listed)
        except BonusNeedsReview:
            continue  # flagged (an audit event); a person decides
    return paid


def resend_flagged_bonus(
    *, bonus: MTurkBonus, actor: Actor, note: str, connector: MTurkMarketplace | None = None
) -> MTurkBonus:
    """A person checked a flagged bonus (pending, its token forgotten by MTurk) and found MTurk never paid
    it: send it under a new token, which restarts the 24 hours within which a retry is safe. Refused when
    MTurk lists it as paid now (it is recorded instead) or when its token is still fresh (the usual retry
    applies). ``note`` says what the person checked; it goes into the audit event."""
    if not note.strip():
        raise ServiceError("Say what you checked on MTurk before sending the bonus again.")
    connector = mturk_connector(connector)
    if bonus.state != MTurkBonusState.PENDING:
        raise ServiceError(f"Bonus {bonus.idempotency_key!r} is already {bonus.state}.")
    if not token_expired(bonus):
        raise ServiceError(f"Bonus {bonus.idempotency_key!r} is less than a day old: retry it as it is.")
    if _listed_as_paid(bonus, connector=connector):
        _record_bonus(bonus, actor=actor)
        bonus.refresh_from_db()
        return bonus
    now = timezone.now()
    token = request_token("bonus", bonus.idempotency_key, now.strftime("%Y%m%dT%H%M%S%f"))
    with transaction.atomic():
        renewed = MTurkBonus.objects.filter(pk=bonus.pk, state=MTurkBonusState.PENDING, token=bonus.token).update(
            token=token, created_at=now
        )
        if not renewed:
            raise ServiceError(f"Bonus {bonus.idempotency_key!r} changed meanwhile; look at it again.")
        record_audit_event(
            actor=actor,
            action="mturk.bonus_resent",
            object_type="assignment",
            object_id=bonus.assignment_id,
            before={"token": bonus.token},
            after={"token": token, "amount": str(bonus.amount), "key": bonus.idempotency_key},
            reason=note,
        )
    bonus.refresh_from_db()
    _pay_bonus(bonus, actor=actor, connector=connector, now=now)
    bonus.refresh_from_db()
    return bonus


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
