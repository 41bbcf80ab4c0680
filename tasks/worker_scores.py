"""Reads for the worker's own scores page (``/work/scores/``) and the admin scorecards' earnings.

Gold figures must not let a worker find out which items were gold: if a score moved right after one
submission, that submission held a gold question. So every gold-based figure (gold answers, accuracy,
interval) and the earnings are computed only over the worker's submissions in *complete blocks* of
``SCORE_BLOCK`` (20) submissions in the job: they move once per 20 submissions, by the aggregate of the
whole block, never by one task. The block count depends only on how many tasks the worker submitted,
not on which were gold, so the refresh moment itself reveals nothing. Agreement with consensus (ordinary
items only), the speed signal (ordinary items only, refreshed by a periodic task) and the answer count
(every submission) do not depend on gold and are shown as kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, DecimalField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from tasks.models import (
    DONE_ASSIGNMENT_STATES,
    Assignment,
    AssignmentState,
    CostEntry,
    CostKind,
    GoldGrade,
    Job,
    JobBlock,
    WorkerJobScore,
)
from workforce.models import Worker
from workforce.scoring import gold_accuracy

SCORE_BLOCK = 20
EARNING_KINDS = (CostKind.REWARD, CostKind.INTERNAL_PAY, CostKind.BONUS)
# A worker's earnings: what they were paid, less reversals of those payments (fees are not theirs).
EARNINGS = Q(kind__in=EARNING_KINDS) | Q(kind=CostKind.REVERSAL, reverses__kind__in=EARNING_KINDS)


@dataclass(frozen=True)
class WorkerJobScorecard:
    job_id: int
    job_name: str
    currency: str
    submitted: int
    counted: int  # submissions the gold figures and earnings cover (complete blocks)
    gold_answers: int
    accuracy: float | None
    accuracy_low: float | None
    accuracy_high: float | None
    agreement: float | None
    answers: int
    median_seconds: float | None
    too_fast: bool
    earnings: Decimal
    awaiting_review: int  # submitted tasks not reviewed yet (gold or not: the count reveals nothing)
    awaiting_pay: Decimal  # their rewards: what approving all of them would pay at most
    blocked_at: datetime | None
    block_reason: str

    @property
    def next_refresh_in(self) -> int:
        return SCORE_BLOCK - (self.submitted - self.counted)


def scorecard_earnings() -> Coalesce:
    """Annotation for a ``WorkerJobScore`` queryset: the worker's earnings on the job, as one subquery."""
    total = (
        CostEntry.objects.filter(EARNINGS, worker_id=OuterRef("worker_id"), job_id=OuterRef("job_id"))
        .order_by()
        .values("worker_id")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    money: DecimalField[Decimal, Decimal] = DecimalField(max_digits=14, decimal_places=4)
    return Coalesce(Subquery(total, output_field=money), Value(Decimal("0")), output_field=money)


def _cutoffs(
    worker: Worker,
) -> tuple[dict[int, tuple[int, datetime | None]], dict[int, tuple[int, Decimal]]]:
    """Per job: (submissions, submission time of the last one in the last complete block, or None); and per
    job the tasks still waiting for review with their rewards, from the same rows."""
    times: dict[int, list[datetime]] = {}
    waiting: dict[int, tuple[int, Decimal]] = {}
    for job_id, submitted_at, state, reward in (
        Assignment.objects.filter(worker=worker, state__in=DONE_ASSIGNMENT_STATES, submitted_at__isnull=False)
        .order_by("job_id", "submitted_at", "id")
        .values_list("job_id", "submitted_at", "state", "reward")
    ):
        if submitted_at is not None:
            times.setdefault(job_id, []).append(submitted_at)
        if state == AssignmentState.SUBMITTED:
            n, pay = waiting.get(job_id, (0, Decimal("0")))
            waiting[job_id] = (n + 1, pay + reward)
    result: dict[int, tuple[int, datetime | None]] = {}
    for job_id, stamps in times.items():
        counted = len(stamps) // SCORE_BLOCK * SCORE_BLOCK
        result[job_id] = (len(stamps), stamps[counted - 1] if counted else None)
    return result, waiting


def list_worker_scorecards(worker: Worker) -> list[WorkerJobScorecard]:
    """The worker's own figures per job they worked on (see the module docstring for what is delayed)."""
    cutoffs, waiting = _cutoffs(worker)
    if not cutoffs:
        return []
    jobs = {j.pk: j for j in Job.objects.filter(pk__in=list(cutoffs)).only("id", "name", "currency")}
    never = Q(pk__in=[])
    in_blocks = Q()
    for job_id, (_, cutoff) in cutoffs.items():
        if cutoff is not None:
            in_blocks |= Q(job_id=job_id, answer__assignment__submitted_at__lte=cutoff)
    grades = {
        row["job_id"]: (row["n"], float(row["right"] or 0.0))
        for row in GoldGrade.objects.filter(in_blocks if in_blocks else never, worker=worker)
        .values("job_id")
        .annotate(n=Count("id"), right=Sum("score"))
        .order_by()
    }
    paid_in_blocks = Q()
    for job_id, (_, cutoff) in cutoffs.items():
        if cutoff is not None:
            paid_in_blocks |= Q(job_id=job_id) & (Q(assignment__isnull=True) | Q(assignment__submitted_at__lte=cutoff))
    earnings = {
        row["job_id"]: row["total"]
        for row in CostEntry.objects.filter(EARNINGS, paid_in_blocks if paid_in_blocks else never, worker=worker)
        .values("job_id")
        .annotate(total=Sum("amount"))
        .order_by()
    }
    scores = {s.job_id: s for s in WorkerJobScore.objects.filter(worker=worker, job_id__in=list(cutoffs))}
    blocks = {
        b.job_id: b for b in JobBlock.objects.filter(worker=worker, job_id__in=list(cutoffs), lifted_at__isnull=True)
    }
    cards = []
    for job_id, (submitted, cutoff) in sorted(cutoffs.items(), reverse=True):
        n, right = grades.get(job_id, (0, 0.0))
        accuracy = gold_accuracy(right, n) if n else None
        score = scores.get(job_id)
        block = blocks.get(job_id)
        waiting_n, waiting_pay = waiting.get(job_id, (0, Decimal("0")))
        cards.append(
            WorkerJobScorecard(
                job_id=job_id,
                job_name=jobs[job_id].name,
                currency=jobs[job_id].currency,
                submitted=submitted,
                counted=submitted // SCORE_BLOCK * SCORE_BLOCK if cutoff is not None else 0,
                gold_answers=n,
                accuracy=accuracy.mean if accuracy else None,
                accuracy_low=accuracy.low if accuracy else None,
                accuracy_high=accuracy.high if accuracy else None,
                agreement=score.agreement if score else None,
                answers=score.answers if score and score.answers else 0,
                median_seconds=score.median_seconds if score else None,
                too_fast=bool(score and score.fast_share and score.fast_share > 0.5),
                earnings=earnings.get(job_id) or Decimal("0"),
                awaiting_review=waiting_n,
                awaiting_pay=waiting_pay,
                blocked_at=block.created_at if block else None,
                block_reason=block.reason if block else "",
            )
        )
    return cards
