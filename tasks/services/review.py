"""Reviewing submitted work: approve (and pay), reject (and release its budget), pay bonuses.

Each transition is a conditional update ``SUBMITTED -> APPROVED/REJECTED``; the audit event and the
ledger rows are written in the same transaction, so an assignment is paid exactly once or not at all.

Internal pool pay (``Job.pay_mode``): the assignment's reward per approved assignment, or the job's
hourly rate times the measured active time (accepted to submitted, at most the assignment duration),
rounded to the cent. Internal pay is booked as ``committed`` (owed to the worker; payroll pays it).
Internal-pool work is approved by a reviewer or automatically ``Job.auto_approve_after`` after its
submission (``auto_review``), where an assignment that failed a gold question is rejected, unpaid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from tasks.models import Assignment, AssignmentState, CostKind, CostStatus, GoldGrade, Job, JobState, PayMode
from tasks.reports.estimate import seconds, unit_cost
from tasks.services.budget import (
    check_budget_alerts,
    release_budget,
    reserve_budget,
    settle_job_budget,
    true_up_reservation,
)
from tasks.services.errors import InvalidTransition, ServiceError
from tasks.services.ledger import CostLine, record_cost, record_costs
from workforce.audit import Actor, record_audit_event
from workforce.marketplaces import mturk_fees
from workforce.marketplaces.base import MarketplaceError
from workforce.marketplaces.registry import get_connector
from workforce.models import Marketplace, Worker

CENT = Decimal("0.01")
GOLD_PASS_SCORE = 0.5


def pay_for(job: Job, assignment: Assignment) -> Decimal:
    """What one approved assignment pays its worker."""
    if job.pay_mode == PayMode.HOURLY and job.hourly_rate is not None and assignment.submitted_at:
        active = min(assignment.submitted_at - assignment.accepted_at, job.assignment_duration)
        return (job.hourly_rate * max(seconds(active), Decimal(0)) / 3600).quantize(CENT, ROUND_HALF_UP)
    return assignment.reward


def _cost_lines(job: Job, assignment: Assignment, assignments_per_hit: int) -> list[CostLine]:
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
        return [
            CostLine(
                kind=CostKind.INTERNAL_PAY,
                amount=pay,
                idempotency_key=f"assignment:{assignment.pk}:pay",
                status=CostStatus.COMMITTED,
                **base,
            )
        ]
    lines = [CostLine(kind=CostKind.REWARD, amount=pay, idempotency_key=f"assignment:{assignment.pk}:reward", **base)]
    if assignment.marketplace == Marketplace.MTURK:
        fee = mturk_fees.assignment_fee(pay, assignments_per_hit=assignments_per_hit)
        lines.append(
            CostLine(
                kind=CostKind.MARKETPLACE_FEE, amount=fee, idempotency_key=f"assignment:{assignment.pk}:fee", **base
            )
        )
    return lines


def _call_marketplace(assignment: Assignment, verb: str, feedback: str) -> None:
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


def _claim(assignment: Assignment, target: str, now: datetime) -> Assignment:
    """Move the assignment SUBMITTED -> ``target`` by a conditional update; the row, re-read."""
    if not Assignment.objects.filter(pk=assignment.pk, state=AssignmentState.SUBMITTED).update(
        state=target, reviewed_at=now
    ):
        current = Assignment.objects.filter(pk=assignment.pk).values_list("state", flat=True).first()
        raise InvalidTransition(f"Assignment {assignment.uuid} is {current}; only submitted work can be reviewed.")
    return Assignment.objects.select_related("job", "hit").get(pk=assignment.pk)


def approve_assignment(*, assignment: Assignment, actor: Actor, feedback: str = "") -> Assignment:
    """Approve one submitted assignment and book its pay (and fees) in the same transaction."""
    now = timezone.now()
    with transaction.atomic():
        locked = _claim(assignment, AssignmentState.APPROVED, now)
        job = locked.job
        _call_marketplace(locked, "approve", feedback)
        lines = _cost_lines(job, locked, locked.hit.assignments_wanted)
        record_costs(lines)
        _after_review(job, actor, now)  # locks the job row before the audit head (the budget lock order)
        record_audit_event(
            actor=actor,
            action="assignment.approved",
            object_type="assignment",
            object_id=locked.uuid,
            before={"state": AssignmentState.SUBMITTED},
            after={"state": AssignmentState.APPROVED, "paid": str(sum(line.amount for line in lines))},
            reason=feedback,
        )
    return locked


def reject_assignment(*, assignment: Assignment, actor: Actor, feedback: str) -> Assignment:
    """Reject one submitted assignment: no pay, and its share of the budget reservation is released."""
    if not feedback or not feedback.strip():
        raise ServiceError("Tell the worker why the work is rejected.")
    now = timezone.now()
    with transaction.atomic():
        locked = _claim(assignment, AssignmentState.REJECTED, now)
        job = locked.job
        _call_marketplace(locked, "reject", feedback)
        release_budget(
            job=job,
            amount=unit_cost(job),
            key=f"assignment:{locked.pk}:release",
            actor=actor,
            reason="assignment rejected",
            now=now,
        )
        record_audit_event(
            actor=actor,
            action="assignment.rejected",
            object_type="assignment",
            object_id=locked.uuid,
            before={"state": AssignmentState.SUBMITTED},
            after={"state": AssignmentState.REJECTED},
            reason=feedback,
        )
        _after_review(job, actor, now)
    return locked


def _after_review(job: Job, actor: Actor, now: datetime) -> None:
    true_up_reservation(job=job, actor=actor)
    check_budget_alerts(job=job, actor=actor, now=now)
    done = Job.objects.filter(pk=job.pk, state__in=[JobState.COMPLETED, JobState.CANCELLED]).exists()
    if done and not Assignment.objects.filter(job_id=job.pk, state=AssignmentState.SUBMITTED).exists():
        settle_job_budget(job=job, actor=actor, reason="job done; all work reviewed")


@dataclass(frozen=True)
class ReviewResult:
    approved: int
    rejected: int
    paid: Decimal


def approve_assignments(
    *,
    job: Job,
    actor: Actor,
    assignment_ids: list[int] | None = None,
    feedback: str = "",
    now: datetime | None = None,
) -> ReviewResult:
    """Approve the job's submitted assignments (all, or ``assignment_ids``) set-based: one conditional
    update, one bulk insert of ledger rows, one audit event each. Remote marketplaces are called one
    assignment at a time (``approve_assignment``)."""
    now = now or timezone.now()
    submitted = Assignment.objects.filter(job_id=job.pk, state=AssignmentState.SUBMITTED)
    if assignment_ids is not None:
        submitted = submitted.filter(pk__in=assignment_ids)
    remote = list(submitted.exclude(marketplace=Marketplace.INTERNAL).select_related("hit").order_by("pk"))
    paid = Decimal(0)
    for assignment in remote:
        approve_assignment(assignment=assignment, actor=actor, feedback=feedback)
        lines = _cost_lines(job, assignment, assignment.hit.assignments_wanted)
        paid += sum((line.amount for line in lines), Decimal(0))
    with transaction.atomic():
        rows = list(
            submitted.filter(marketplace=Marketplace.INTERNAL)
            .select_for_update()
            .order_by("pk")
            .only("uuid", "hit", "worker", "marketplace", "external_id", "reward", "accepted_at", "submitted_at")
        )
        ids = [row.pk for row in rows]
        updated = Assignment.objects.filter(pk__in=ids, state=AssignmentState.SUBMITTED).update(
            state=AssignmentState.APPROVED, reviewed_at=now
        )
        if updated != len(ids):  # the rows are locked: only a broken invariant gets here
            raise InvalidTransition("Some assignments changed state while being approved; nothing was approved.")
        lines = [line for row in rows for line in _cost_lines(job, row, 1)]
        record_costs(lines)
        if rows:
            _after_review(job, actor, now)  # job row before the audit head: the budget lock order
        for row, line in zip(rows, lines, strict=True):
            record_audit_event(
                actor=actor,
                action="assignment.approved",
                object_type="assignment",
                object_id=row.uuid,
                before={"state": AssignmentState.SUBMITTED},
                after={"state": AssignmentState.APPROVED, "paid": str(line.amount)},
                reason=feedback,
            )
        paid += sum((line.amount for line in lines), Decimal(0))
    return ReviewResult(approved=len(remote) + len(rows), rejected=0, paid=paid)


GOLD_FAILED_FEEDBACK = "A hidden check question in this task was answered wrongly, so it is not paid."


def auto_review(*, actor: Actor, job: Job | None = None, now: datetime | None = None) -> ReviewResult:
    """Review internal-pool work whose job's ``auto_approve_after`` has passed since submission:
    assignments that failed a gold question are rejected (unpaid), the rest approved and paid."""
    now = now or timezone.now()
    jobs = Job.objects.filter(auto_approve_after__isnull=False)
    if job is not None:
        jobs = jobs.filter(pk=job.pk)
    approved = rejected = 0
    paid = Decimal(0)
    for each in jobs.filter(Exists(Assignment.objects.filter(job_id=OuterRef("pk"), state=AssignmentState.SUBMITTED))):
        assert each.auto_approve_after is not None
        due = Assignment.objects.filter(
            job_id=each.pk,
            state=AssignmentState.SUBMITTED,
            marketplace=Marketplace.INTERNAL,
            submitted_at__lte=now - each.auto_approve_after,
        )
        failed = GoldGrade.objects.filter(answer__assignment_id=OuterRef("pk"), score__lt=GOLD_PASS_SCORE)
        for assignment in due.filter(Exists(failed)).select_related("job"):
            reject_assignment(assignment=assignment, actor=actor, feedback=GOLD_FAILED_FEEDBACK)
            rejected += 1
        result = approve_assignments(
            job=each, actor=actor, assignment_ids=list(due.values_list("pk", flat=True)), now=now
        )
        approved += result.approved
        paid += result.paid
    return ReviewResult(approved=approved, rejected=rejected, paid=paid)


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
    it, audit ``bonus.paid``. Returns False when the key was paid before (nothing booked again)."""
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise ServiceError("A bonus must be a positive Decimal amount.")
    if not reason.strip():
        raise ServiceError("Give the worker a reason for the bonus.")
    if assignment is not None and (assignment.job_id != job.pk or assignment.worker_id != worker.pk):
        raise ServiceError("The assignment belongs to another job or worker.")
    marketplace = worker.marketplace
    fee = mturk_fees.bonus_fee(amount) if marketplace == Marketplace.MTURK else Decimal(0)
    with transaction.atomic():
        _, created = reserve_budget(
            job=job, amount=amount + fee, key=f"bonus:{key}:reserve", actor=actor, reason="bonus"
        )
        if not created:
            return False
        common: dict[str, Any] = {
            "job": job,
            "marketplace": marketplace,
            "assignment": assignment,
            "worker": worker,
            "status": CostStatus.COMMITTED,
            "memo": reason[:255],
        }
        record_cost(kind=CostKind.BONUS, amount=amount, idempotency_key=f"bonus:{key}", **common)
        if fee:
            record_cost(kind=CostKind.MARKETPLACE_FEE, amount=fee, idempotency_key=f"bonus:{key}:fee", **common)
        record_audit_event(
            actor=actor,
            action="bonus.paid",
            object_type="worker",
            object_id=worker.pk,
            after={"job": job.pk, "amount": str(amount), "fee": str(fee), "key": key},
            reason=reason,
        )
        check_budget_alerts(job=job, actor=actor)
    return True
