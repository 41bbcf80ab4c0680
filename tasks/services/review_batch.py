"""Reviewing many assignments at once: a reviewer's page, approval of work that passed its gold, and the
periodic auto review.

Internal-pool work is reviewed set-based (one conditional update, bulk ledger rows, bulk budget releases,
one chained audit event per assignment under one lock); remote marketplaces are called one assignment at
a time through ``tasks.services.review``, and an assignment the marketplace refuses stays submitted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Exists, OuterRef, Sum
from django.utils import timezone

from tasks.models import Assignment, AssignmentState, CostEntry, GoldGrade, Job
from tasks.review_selectors import GOLD_PASS_SCORE, count_submitted_by_gold, list_submitted_passing_gold
from tasks.services.budget import after_review, exact, release_rejected_assignments
from tasks.services.errors import InvalidTransition, ServiceError
from tasks.services.ledger import record_costs
from tasks.services.review import approve_assignment, assignment_cost_lines, reject_assignment
from workforce.audit import Actor, QueuedEvent, record_audit_event, record_audit_events
from workforce.models import Marketplace


@dataclass(frozen=True)
class ReviewResult:
    approved: int
    rejected: int
    paid: Decimal
    refusals: tuple[str, ...] = ()  # one sentence per remote assignment the marketplace refused (left submitted)

    @property
    def failed(self) -> int:
        """Remote assignments the marketplace refused or could not be reached for (left submitted)."""
        return len(self.refusals)


def _one_by_one(
    assignments: Iterable[Assignment], review: Callable[[Assignment], object]
) -> tuple[list[int], list[str]]:
    """Review remote assignments one call at a time (each marketplace call is its own transaction): the ids
    reviewed, and the marketplace's refusals as sentences (those assignments stay submitted)."""
    done: list[int] = []
    refusals: list[str] = []
    for assignment in assignments:
        try:
            review(assignment)
        except ServiceError as exc:
            refusals.append(str(exc))
        else:
            done.append(assignment.pk)
    return done, refusals


def approve_assignments(
    *,
    job: Job,
    actor: Actor,
    assignment_ids: list[int] | None = None,
    feedback: str = "",
    now: datetime | None = None,
) -> ReviewResult:
    """Approve the job's submitted assignments (all, or ``assignment_ids``). Internal-pool work is set-based:
    one conditional update, one bulk insert of ledger rows, one audit event each. Remote marketplaces are
    called one assignment at a time (``approve_assignment``); one they refuse stays submitted and is counted
    in ``failed``."""
    now = now or timezone.now()
    submitted = Assignment.objects.filter(job_id=job.pk, state=AssignmentState.SUBMITTED)
    if assignment_ids is not None:
        submitted = submitted.filter(pk__in=assignment_ids)
    approved_remote, refusals = _one_by_one(
        submitted.exclude(marketplace=Marketplace.INTERNAL).order_by("pk"),
        lambda a: approve_assignment(assignment=a, actor=actor, feedback=feedback),
    )
    paid = exact(CostEntry.objects.filter(assignment_id__in=approved_remote).aggregate(total=Sum("amount"))["total"])
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
        lines = [line for row in rows for line in assignment_cost_lines(job, row)]
        record_costs(lines)
        if rows:
            after_review(job=job, actor=actor, now=now)  # job row before the audit head: the budget lock order
        record_audit_events(
            [
                QueuedEvent(
                    actor=actor,
                    action="assignment.approved",
                    object_type="assignment",
                    object_id=row.pk,
                    before={"state": AssignmentState.SUBMITTED},
                    after={"state": AssignmentState.APPROVED, "paid": str(line.amount)},
                    reason=feedback,
                )
                for row, line in zip(rows, lines, strict=True)
            ]
        )
        paid += sum((line.amount for line in lines), Decimal(0))
    return ReviewResult(approved=len(approved_remote) + len(rows), rejected=0, paid=paid, refusals=tuple(refusals))


def reject_assignments(
    *, job: Job, actor: Actor, assignment_ids: list[int], feedback: str, now: datetime | None = None
) -> ReviewResult:
    """Reject the job's submitted assignments among ``assignment_ids`` with the same feedback, as
    ``reject_assignment`` does one: internal-pool work set-based (one conditional update, the reservation
    released in bulk, one audit event each); remote work one call per assignment, a refusal left submitted
    and counted in ``failed``."""
    if not feedback or not feedback.strip():
        raise ServiceError("Tell the worker why the work is rejected.")
    now = now or timezone.now()
    submitted = Assignment.objects.filter(job_id=job.pk, state=AssignmentState.SUBMITTED, pk__in=assignment_ids)
    rejected_remote, refusals = _one_by_one(
        submitted.exclude(marketplace=Marketplace.INTERNAL).order_by("pk"),
        lambda a: reject_assignment(assignment=a, actor=actor, feedback=feedback),
    )
    with transaction.atomic():
        ids = list(
            submitted.filter(marketplace=Marketplace.INTERNAL)
            .select_for_update()
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        updated = Assignment.objects.filter(pk__in=ids, state=AssignmentState.SUBMITTED).update(
            state=AssignmentState.REJECTED, reviewed_at=now
        )
        if updated != len(ids):  # the rows are locked: only a broken invariant gets here
            raise InvalidTransition("Some assignments changed state while being rejected; nothing was rejected.")
        if ids:
            release_rejected_assignments(job=job, assignment_ids=ids, actor=actor, now=now)
            record_audit_events(
                [
                    QueuedEvent(
                        actor=actor,
                        action="assignment.rejected",
                        object_type="assignment",
                        object_id=pk,
                        before={"state": AssignmentState.SUBMITTED},
                        after={"state": AssignmentState.REJECTED},
                        reason=feedback,
                    )
                    for pk in ids
                ]
            )
            after_review(job=job, actor=actor, now=now)
    return ReviewResult(approved=0, rejected=len(rejected_remote) + len(ids), paid=Decimal(0), refusals=tuple(refusals))


@dataclass(frozen=True)
class GoldApprovalResult:
    approved: int
    failed_gold: int  # left for review: a gold answer was wrong
    without_gold: int  # left for review: nothing to check them against
    refused: int  # the marketplace refused or was unreachable (left submitted)
    paid: Decimal


PASSED_GOLD_FEEDBACK = "Approved: your answers to the check questions were right."


def approve_passing_gold(*, job: Job, actor: Actor) -> GoldApprovalResult:
    """Approve every submitted assignment of ``job`` whose gold grades all pass (at least one graded), through
    ``approve_assignments``; the others wait for a reviewer. One ``job.gold_passing_approved`` event."""
    counts = count_submitted_by_gold(job)
    ids = list(list_submitted_passing_gold(job))
    result = approve_assignments(job=job, actor=actor, assignment_ids=ids, feedback=PASSED_GOLD_FEEDBACK)
    outcome = GoldApprovalResult(
        approved=result.approved,
        failed_gold=counts.failed,
        without_gold=counts.ungraded,
        refused=result.failed,
        paid=result.paid,
    )
    with transaction.atomic():
        record_audit_event(
            actor=actor,
            action="job.gold_passing_approved",
            object_type="job",
            object_id=job.pk,
            after={
                "approved": outcome.approved,
                "failed_gold": outcome.failed_gold,
                "without_gold": outcome.without_gold,
                "refused": outcome.refused,
                "paid": str(outcome.paid),
            },
        )
    return outcome


GOLD_FAILED_FEEDBACK = "A hidden check question in this task was answered wrongly, so it is not paid."


def auto_review(*, actor: Actor, job: Job | None = None, now: datetime | None = None) -> ReviewResult:
    """Review internal-pool work whose job's ``auto_approve_after`` has passed since submission:
    assignments whose gold answers are all wrong are rejected (unpaid), the rest approved and paid (a page of
    several items with one missed gold question among passed ones is paid: the block policy weighs the miss)."""
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
        grades = GoldGrade.objects.filter(answer__assignment_id=OuterRef("pk"))
        all_wrong = due.filter(Exists(grades.filter(score__lt=GOLD_PASS_SCORE))).exclude(
            Exists(grades.filter(score__gte=GOLD_PASS_SCORE))
        )
        wrong = list(all_wrong.values_list("pk", flat=True))
        if wrong:  # one set-based rejection per job, not one transaction per assignment
            rejected += reject_assignments(
                job=each, actor=actor, assignment_ids=wrong, feedback=GOLD_FAILED_FEEDBACK, now=now
            ).rejected
        result = approve_assignments(
            job=each, actor=actor, assignment_ids=list(due.values_list("pk", flat=True)), now=now
        )
        approved += result.approved
        paid += result.paid
    return ReviewResult(approved=approved, rejected=rejected, paid=paid)
