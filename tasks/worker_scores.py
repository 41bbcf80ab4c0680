"""Reads for the worker's own scores page (``/work/scores/``) and the admin scorecards' earnings.

Gold figures must not let a worker find out which items were gold: if a score moved right after one
submission, that submission held a gold question. So every gold-based figure (gold answers, accuracy,
interval) and the earnings are computed only over the worker's submissions in *complete blocks* of
``SCORE_BLOCK`` (20) submissions in the job: they move once per 20 submissions, by the aggregate of the
whole block, never by one task. The block count depends only on how many tasks the worker submitted,
not on which were gold, so the refresh moment itself reveals nothing. Agreement with consensus (ordinary
items only), the speed signal (ordinary items only, refreshed by a periodic task) and the answer count
(every submission) do not depend on gold and are shown as kept.

"Waiting for review" counts submitted tasks not reviewed yet, with what approving them would pay (the piece
reward, or the hourly rate times the measured time, as ``tasks.services.review.pay_for`` computes it). A job
whose ``gold_miss_action`` rejects a page with every gold answer wrong does so *at submit time*, while other
pages wait for a reviewer or the auto-review sweep; so such a rejection is shown as still waiting (with the
pay it would have earned) until the review of the worker's work in the job has caught up with it: until a
task the worker submitted after it in the job has been reviewed, or, on a job with automatic approval, until
``auto_approve_after`` plus one auto-review sweep has passed since its submission (ordinary work submitted
with it has been reviewed by then). Unpaid, it never adds to the earnings. (On a job reviewed only by people,
a worker's last such page keeps waiting until a later task of theirs has been reviewed.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, DecimalField, Max, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

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
from tasks.services.review import pay_for  # pure: what approving an assignment pays (read only)
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
    awaiting_review: int  # tasks not reviewed yet, gold or not (see the module docstring): it reveals nothing
    awaiting_pay: Decimal  # what approving all of them would pay at most (piece reward or hourly pay)
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


# (job id, assignment id, state, accepted, submitted, reward): the worker's submitted assignments
_Row = tuple[int, int, str, datetime, datetime, Decimal]


def _cutoffs(worker: Worker) -> tuple[dict[int, tuple[int, datetime | None]], list[_Row]]:
    """Per job: (submissions, submission time of the last one in the last complete block, or None); and the
    submitted assignments themselves, by job and submission time, for the waiting count."""
    rows: list[_Row] = [
        (job_id, pk, state, accepted_at, submitted_at, reward)
        for job_id, pk, state, accepted_at, submitted_at, reward in Assignment.objects.filter(
            worker=worker, state__in=DONE_ASSIGNMENT_STATES, submitted_at__isnull=False
        )
        .order_by("job_id", "submitted_at", "id")
        .values_list("job_id", "id", "state", "accepted_at", "submitted_at", "reward")
        if submitted_at is not None
    ]
    times: dict[int, list[datetime]] = {}
    for job_id, _, _, _, submitted_at, _ in rows:
        times.setdefault(job_id, []).append(submitted_at)
    result: dict[int, tuple[int, datetime | None]] = {}
    for job_id, stamps in times.items():
        counted = len(stamps) // SCORE_BLOCK * SCORE_BLOCK
        result[job_id] = (len(stamps), stamps[counted - 1] if counted else None)
    return result, rows


def _auto_review_sweep() -> timedelta:
    """How often the auto-review task runs (``CELERY_BEAT_SCHEDULE``): at most this late after its due time
    is automatically approved work reviewed."""
    schedule = settings.CELERY_BEAT_SCHEDULE.get("auto-review", {}).get("schedule")
    return schedule if isinstance(schedule, timedelta) else timedelta(0)


def _waiting(
    rows: Sequence[_Row], jobs: dict[int, Job], missed_gold: set[int], now: datetime
) -> dict[int, tuple[int, Decimal]]:
    """Per job: the tasks shown as waiting for review and what approving them would pay (module docstring).

    ``rows`` by job and submission time; ``missed_gold``: the ids of rejected assignments whose gold answers
    were all wrong (rejected at submit time where the job's policy says so)."""
    waiting: dict[int, tuple[int, Decimal]] = {}
    sweep = _auto_review_sweep()
    reviewed_later: set[int] = set()  # the jobs where a task submitted after this one has been reviewed
    for job_id, pk, state, accepted_at, submitted_at, reward in reversed(rows):
        job = jobs[job_id]
        hidden = pk in missed_gold
        if state == AssignmentState.SUBMITTED:
            shown = True
        elif hidden:
            overdue = job.auto_approve_after is not None and submitted_at + job.auto_approve_after + sweep <= now
            shown = not (job_id in reviewed_later or overdue)
        else:
            shown = False
            reviewed_later.add(job_id)
        if shown:
            pay = pay_for(job, Assignment(accepted_at=accepted_at, submitted_at=submitted_at, reward=reward))
            n, total = waiting.get(job_id, (0, Decimal("0")))
            waiting[job_id] = (n + 1, total + pay)
    return waiting


def _missed_gold_rejections(worker: Worker) -> set[int]:
    """The worker's rejected assignments whose gold answers were all wrong, as the missed-gold policy
    (``tasks.services.quality.act_on_missed_gold``) judges them; one aggregate query."""
    return set(
        GoldGrade.objects.filter(worker=worker, answer__assignment__state=AssignmentState.REJECTED)
        .values("answer__assignment_id")
        .annotate(best=Max("score"))
        .filter(best__lte=0)
        .values_list("answer__assignment_id", flat=True)
    )


def list_worker_scorecards(worker: Worker) -> list[WorkerJobScorecard]:
    """The worker's own figures per job they worked on (see the module docstring for what is delayed)."""
    cutoffs, rows = _cutoffs(worker)
    if not cutoffs:
        return []
    fields = ("id", "name", "currency", "pay_mode", "hourly_rate", "assignment_duration", "auto_approve_after")
    jobs = {j.pk: j for j in Job.objects.filter(pk__in=list(cutoffs)).only(*fields)}
    waiting = _waiting(rows, jobs, _missed_gold_rejections(worker), timezone.now())
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
