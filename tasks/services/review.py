"""Reviewing submitted work: approve (and pay), reject (and release its budget), pay bonuses.

The one entry point for every marketplace: admin actions, the API, auto review and quality policies call
these functions. MTurk work is delegated to ``tasks.services.mturk_review`` (MTurk is called before our
transaction, bonuses record an intent with a deterministic token first); its ledger rows use the same key
scheme (``tasks.services.ledger.assignment_cost_key`` / ``bonus_cost_key``) as collect and the auto-approval
guard, so each cost is booked once whichever path sees it first.

Each transition is a conditional update ``SUBMITTED -> APPROVED/REJECTED``; the audit event and the
ledger rows are written in the same transaction, so an assignment is paid exactly once or not at all.

Internal pool pay (``Job.pay_mode``): the assignment's reward per approved assignment, or the job's
hourly rate times the measured active time (accepted to submitted, at most the assignment duration),
rounded to the cent. Internal pay is booked as ``committed`` (owed to the worker; payroll pays it).
Internal-pool work is approved by a reviewer or automatically ``Job.auto_approve_after`` after its
submission (``tasks.services.review_batch.auto_review``), where an assignment whose gold answers are all wrong
is rejected, unpaid. Reviews of many assignments at once live in ``tasks.services.review_batch``.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from tasks.models import (
    Assignment,
    AssignmentState,
    CostEntry,
    CostKind,
    CostStatus,
    Job,
    MTurkBonus,
    PayMode,
)
from tasks.reports.estimate import seconds
from tasks.services.budget import (
    after_review,
    check_budget_alerts,
    release_rejected_work,
    reserve_budget,
)
from tasks.services.errors import InvalidTransition, ServiceError
from tasks.services.ledger import CostLine, assignment_cost_key, bonus_cost_key, record_cost, record_costs
from tasks.services.mturk_review import (
    approve_mturk_assignment,
    override_mturk_rejection,
    reject_mturk_assignment,
    send_mturk_bonus,
)
from workforce.audit import Actor, QueuedEvent, record_audit_event, record_audit_events
from workforce.marketplaces.base import MarketplaceError
from workforce.marketplaces.registry import get_connector
from workforce.models import Marketplace, Worker

CENT = Decimal("0.01")


class BonusNotConfirmed(ServiceError):
    """The marketplace did not confirm a bonus; its intent stays pending and a retry reuses its token."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


def pay_for(job: Job, assignment: Assignment) -> Decimal:
    """What one approved assignment pays its worker."""
    if job.pay_mode == PayMode.HOURLY and job.hourly_rate is not None and assignment.submitted_at:
        active = min(assignment.submitted_at - assignment.accepted_at, job.assignment_duration)
        return (job.hourly_rate * max(seconds(active), Decimal(0)) / 3600).quantize(CENT, ROUND_HALF_UP)
    return assignment.reward


def assignment_cost_lines(job: Job, assignment: Assignment) -> list[CostLine]:
    """What an approved assignment costs off MTurk (MTurk's rows are ``mturk_review.book_approval_charges``)."""
    base: dict[str, Any] = {
        "job_id": job.pk,
        "hit_id": assignment.hit_id,
        "assignment_id": assignment.pk,
        "worker_id": assignment.worker_id,
        "marketplace": assignment.marketplace,
        "currency": job.currency,
        "reference": assignment.external_id or "",
    }
    pay = pay_for(job, assignment)
    if assignment.marketplace == Marketplace.INTERNAL:
        key, kind, status = assignment_cost_key(assignment.pk, "pay"), CostKind.INTERNAL_PAY, CostStatus.COMMITTED
        return [CostLine(kind=kind, amount=pay, idempotency_key=key, status=status, **base)]
    return [
        CostLine(kind=CostKind.REWARD, amount=pay, idempotency_key=assignment_cost_key(assignment.pk, "reward"), **base)
    ]


def _call_marketplace(assignment: Assignment, verb: str, feedback: str) -> None:
    """Approve or reject on a remote marketplace other than MTurk (whose service calls it itself)."""
    if assignment.marketplace == Marketplace.INTERNAL:
        return
    if not assignment.external_id:
        raise ServiceError(f"Assignment {assignment.uuid} has no {assignment.marketplace} id to review.")
    try:
        connector = get_connector(assignment.marketplace)
        if verb == "approve":
            connector.approve(assignment.external_id, feedback=feedback)
        else:
            connector.reject(assignment.external_id, feedback=feedback)
    except MarketplaceError as exc:
        raise ServiceError(f"{assignment.get_marketplace_display()} refused the review: {exc}") from exc


def _require_submitted(assignment: Assignment) -> None:
    current = Assignment.objects.filter(pk=assignment.pk).values_list("state", flat=True).first()
    if current != AssignmentState.SUBMITTED:
        raise InvalidTransition(f"Assignment {assignment.uuid} is {current}; only submitted work can be reviewed.")


def _claim(assignment: Assignment, target: str, now: datetime) -> Assignment:
    """Move the assignment SUBMITTED -> ``target`` by a conditional update; the row, re-read."""
    if not Assignment.objects.filter(pk=assignment.pk, state=AssignmentState.SUBMITTED).update(
        state=target, reviewed_at=now
    ):
        _require_submitted(assignment)
    return Assignment.objects.select_related("job", "hit").get(pk=assignment.pk)


def _on_mturk(call: Any, assignment: Assignment) -> Assignment:
    _require_submitted(assignment)
    try:
        result: Assignment = call()
    except MarketplaceError as exc:
        raise ServiceError(f"MTurk refused the review of assignment {assignment.uuid}: {exc}") from exc
    return result


def approve_assignment(*, assignment: Assignment, actor: Actor, feedback: str = "") -> Assignment:
    """Approve one submitted assignment and book its pay (and fees) in the same transaction."""
    if assignment.marketplace == Marketplace.MTURK:
        return _on_mturk(
            lambda: approve_mturk_assignment(assignment=assignment, actor=actor, feedback=feedback), assignment
        )
    now = timezone.now()
    with transaction.atomic():
        locked = _claim(assignment, AssignmentState.APPROVED, now)
        job = locked.job
        _call_marketplace(locked, "approve", feedback)
        lines = assignment_cost_lines(job, locked)
        record_costs(lines)
        after_review(job=job, actor=actor, now=now)  # locks the job row before the audit head (the lock order)
        record_audit_event(
            actor=actor,
            action="assignment.approved",
            object_type="assignment",
            object_id=locked.pk,
            before={"state": AssignmentState.SUBMITTED},
            after={"state": AssignmentState.APPROVED, "paid": str(sum(line.amount for line in lines))},
            reason=feedback,
        )
    return locked


def reject_assignment(*, assignment: Assignment, actor: Actor, feedback: str) -> Assignment:
    """Reject one submitted assignment: no pay, and its share of the budget reservation is released."""
    if not feedback or not feedback.strip():
        raise ServiceError("Tell the worker why the work is rejected.")
    if assignment.marketplace == Marketplace.MTURK:
        return _on_mturk(
            lambda: reject_mturk_assignment(assignment=assignment, actor=actor, feedback=feedback), assignment
        )
    now = timezone.now()
    with transaction.atomic():
        locked = _claim(assignment, AssignmentState.REJECTED, now)
        _call_marketplace(locked, "reject", feedback)
        release_rejected_work(assignment=locked, actor=actor, now=now)
        record_audit_event(
            actor=actor,
            action="assignment.rejected",
            object_type="assignment",
            object_id=locked.pk,
            before={"state": AssignmentState.SUBMITTED},
            after={"state": AssignmentState.REJECTED},
            reason=feedback,
        )
        after_review(job=locked.job, actor=actor, now=now)
    return locked


def override_rejection(*, assignment: Assignment, actor: Actor, feedback: str = "") -> Assignment:
    """Approve (and pay) work rejected before: MTurk allows it within 30 days of the rejection; the
    internal pool's rejections are final."""
    if assignment.marketplace != Marketplace.MTURK:
        raise ServiceError("Only an MTurk rejection can be overridden (within 30 days).")
    try:
        return override_mturk_rejection(assignment=assignment, actor=actor, feedback=feedback)
    except MarketplaceError as exc:
        raise ServiceError(f"MTurk refused to override the rejection of {assignment.uuid}: {exc}") from exc


def pay_bonus(
    *,
    job: Job,
    worker: Worker,
    amount: Decimal,
    reason: str,
    key: str,
    actor: Actor,
    assignment: Assignment | None = None,
) -> bool:
    """Pay ``worker`` a bonus on ``job`` once per ``key``: reserve it (and its fee) within budget, book
    it, audit ``bonus.paid``. Returns False when the key was used before for the same bonus (nothing is
    booked again); a key used for another bonus (job, worker or amount) is refused.

    On MTurk the bonus goes out through ``SendBonus`` on an assignment (the given one, else the worker's
    latest submitted or approved one on the job) with a token derived from ``key``; a call that finds the
    key's intent still unsent (a lost reply, a crash) sends it again with the same token, so MTurk pays once.
    Internal-pool bonuses are booked as committed (payroll pays them). Many bonuses at once:
    ``tasks.services.bonuses_bulk.pay_bonuses`` (the same rules, set-based for the internal pool)."""
    marketplace = bonus_marketplace(job=job, worker=worker, amount=amount, reason=reason, assignment=assignment)
    if marketplace == Marketplace.MTURK:
        return _pay_mturk_bonus(
            job=job, worker=worker, amount=amount, reason=reason, key=key, actor=actor, assignment=assignment
        )
    with transaction.atomic():
        _refuse_another_bonus(key, job=job, worker=worker, amount=amount, missing_ok=True)
        _, created = reserve_budget(
            job=job, amount=amount, key=f"{bonus_cost_key(key)}:reserve", actor=actor, reason="bonus"
        )
        if not created:  # booked meanwhile: by a retry of this bonus, or by a concurrent call for another
            _refuse_another_bonus(key, job=job, worker=worker, amount=amount, missing_ok=False)
            return False
        record_cost(
            kind=CostKind.BONUS,
            amount=amount,
            idempotency_key=bonus_cost_key(key),
            job=job,
            marketplace=marketplace,
            assignment=assignment,
            worker=worker,
            status=CostStatus.COMMITTED,
            memo=reason[:255],
        )
        record_audit_events(
            [bonus_paid_event(actor=actor, job=job, worker=worker, amount=amount, key=key, reason=reason)]
        )
        check_budget_alerts(job=job, actor=actor)
    return True


def bonus_marketplace(*, job: Job, worker: Worker, amount: Decimal, reason: str, assignment: Assignment | None) -> str:
    """The marketplace a bonus goes through (``MTURK`` or ``INTERNAL``), or the ``ServiceError`` refusing
    it before anything is read or booked: the rules ``pay_bonus`` and ``bonuses_bulk.pay_bonuses`` share."""
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise ServiceError("A bonus must be a positive Decimal amount.")
    if not reason.strip():
        raise ServiceError("Give the worker a reason for the bonus.")
    if assignment is not None and (assignment.job_id != job.pk or assignment.worker_id != worker.pk):
        raise ServiceError("The assignment belongs to another job or worker.")
    marketplace = worker.marketplace
    if job.marketplace == Marketplace.INTERNAL and worker.user_id is not None:
        marketplace = Marketplace.INTERNAL  # a pool worker (an imported worker who joined by invitation) on pool work
    if marketplace not in (Marketplace.MTURK, Marketplace.INTERNAL):
        raise ServiceError(f"Bonuses on {worker.get_marketplace_display()} are not supported.")
    return marketplace


def bonus_paid_event(*, actor: Actor, job: Job, worker: Worker, amount: Decimal, key: str, reason: str) -> QueuedEvent:
    """The ``bonus.paid`` audit event of an internal-pool bonus."""
    return QueuedEvent(
        actor=actor,
        action="bonus.paid",
        object_type="worker",
        object_id=worker.pk,
        after={"job": job.pk, "amount": str(amount), "fee": "0", "key": key},
        reason=reason,
    )


def another_bonus(key: str) -> ServiceError:
    """The refusal of a bonus key booked (or reserved) for another bonus."""
    return ServiceError(f"Bonus key {key!r} was used for another bonus.")


def _refuse_another_bonus(key: str, *, job: Job, worker: Worker, amount: Decimal, missing_ok: bool) -> None:
    """A retry must be the same bonus, as on MTurk: refuse a key booked for another job, worker or amount
    (``missing_ok``: a key not booked yet is fine)."""
    booked = (
        CostEntry.objects.filter(idempotency_key=bonus_cost_key(key)).values_list("job_id", "worker_id", "amount")
    ).first()
    if (booked is not None or not missing_ok) and booked != (job.pk, worker.pk, amount):
        raise another_bonus(key)


def _pay_mturk_bonus(
    *, job: Job, worker: Worker, amount: Decimal, reason: str, key: str, actor: Actor, assignment: Assignment | None
) -> bool:
    if assignment is None:
        assignment = (
            Assignment.objects.filter(
                job_id=job.pk, worker_id=worker.pk, state__in=[AssignmentState.SUBMITTED, AssignmentState.APPROVED]
            )
            .order_by("-submitted_at", "-pk")
            .first()
        )
        if assignment is None:
            raise ServiceError("MTurk pays a bonus on an assignment; this worker has no submitted work on the job.")
    requested_before = MTurkBonus.objects.filter(idempotency_key=key).exists()
    try:
        send_mturk_bonus(assignment=assignment, amount=amount, reason=reason, idempotency_key=key, actor=actor)
    except MarketplaceError as exc:
        raise BonusNotConfirmed(
            f"MTurk did not confirm the bonus: {exc}. Retrying sends it with the same token, so it is paid once.",
            permanent=exc.permanent,
        ) from exc
    return not requested_before
