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

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import (
    Count,
    DecimalField,
    Exists,
    F,
    FilteredRelation,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    Window,
)
from django.db.models.functions import Coalesce, RowNumber
from django.utils import timezone

from tasks.models import (
    DONE_ASSIGNMENT_STATES,
    Assignment,
    AssignmentState,
    CostEntry,
    CostKind,
    GoldGrade,
    Job,
    PayMode,
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


def _done(worker: Worker) -> QuerySet[Assignment]:
    """The worker's submitted assignments (reviewed or not)."""
    return Assignment.objects.filter(worker=worker, state__in=DONE_ASSIGNMENT_STATES, submitted_at__isnull=False)


def _cutoffs(worker: Worker) -> dict[int, tuple[int, datetime | None]]:
    """Per job: (submissions, submission time of the last one in the last complete block, or None). One query:
    the database numbers the worker's submissions per job (by submission time, then id) and returns only the
    last one and the last one of a complete block, so at most two rows per job however many were submitted."""
    ranked = _done(worker).annotate(
        position=Window(RowNumber(), partition_by=[F("job_id")], order_by=[F("submitted_at").asc(), F("id").asc()]),
        total=Window(Count("id"), partition_by=[F("job_id")]),
    )
    last_in_block = F("total") / SCORE_BLOCK * SCORE_BLOCK  # integer division on both databases
    result: dict[int, tuple[int, datetime | None]] = {}
    for job_id, total, position, submitted_at in ranked.filter(
        Q(position=F("total")) | Q(position=last_in_block)
    ).values_list("job_id", "total", "position", "submitted_at"):
        _, cutoff = result.get(job_id, (total, None))
        is_cutoff = position == total // SCORE_BLOCK * SCORE_BLOCK
        result[job_id] = (total, submitted_at if is_cutoff else cutoff)
    return result


def _auto_review_sweep() -> timedelta:
    """How often the auto-review task runs (``CELERY_BEAT_SCHEDULE``): at most this late after its due time
    is automatically approved work reviewed."""
    schedule = settings.CELERY_BEAT_SCHEDULE.get("auto-review", {}).get("schedule")
    return schedule if isinstance(schedule, timedelta) else timedelta(0)


def _missed_gold(assignment: OuterRef) -> Q:
    """The assignment (``OuterRef`` to it) was rejected and every gold answer in it was wrong: the missed-gold
    policy (``tasks.services.quality.act_on_missed_gold``) may have rejected it at submit time. (The grades are
    found through the assignment's answers alone, by index: they are the assignment's worker's.)"""
    grades = GoldGrade.objects.filter(answer__assignment_id=assignment)
    return Q(state=AssignmentState.REJECTED) & Exists(grades) & ~Exists(grades.filter(score__gt=0))


def _last_reviewed(worker: Worker) -> dict[int, tuple[datetime, int]]:
    """Per job: (submission time, id) of the worker's last reviewed task that is not a missed-gold rejection.
    One query, one row per job."""
    reviewed = (
        _done(worker)
        .exclude(state=AssignmentState.SUBMITTED)
        .filter(~_missed_gold(OuterRef("pk")))
        .annotate(
            rank=Window(RowNumber(), partition_by=[F("job_id")], order_by=[F("submitted_at").desc(), F("id").desc()])
        )
    )
    return {
        job_id: (submitted_at, pk)
        for job_id, submitted_at, pk in reviewed.filter(rank=1).values_list("job_id", "submitted_at", "id")
        if submitted_at is not None  # (always: ``_done`` has only submitted work)
    }


def _waiting(worker: Worker, jobs: dict[int, Job], now: datetime) -> dict[int, tuple[int, Decimal]]:
    """Per job: the tasks shown as waiting for review and what approving them would pay (module docstring).

    Counted in the database: a task waits while it is not reviewed, or while it is a missed-gold rejection
    submitted after the worker's last other reviewed task in the job (``_last_reviewed``) whose auto-review
    has not had time to run. Piece pay is summed there too; hourly pay is ``pay_for``'s per task (rounded to
    the cent each), so only the waiting tasks of hourly jobs are read, for their times."""
    overtaken = Q(pk__in=[])  # reviewed work submitted after it: its review has caught up
    for job_id, (last_at, last_id) in _last_reviewed(worker).items():
        overtaken |= Q(job_id=job_id) & (Q(submitted_at__lt=last_at) | Q(submitted_at=last_at, id__lt=last_id))
    overdue = Q(pk__in=[])  # the auto-review sweep has passed it
    sweep = _auto_review_sweep()
    for job in jobs.values():
        if job.auto_approve_after is not None:
            overdue |= Q(job_id=job.pk, submitted_at__lte=now - sweep - job.auto_approve_after)
    hidden = _missed_gold(OuterRef("pk")) & ~overtaken & ~overdue
    shown = _done(worker).filter(Q(state=AssignmentState.SUBMITTED) | hidden)
    hourly = [j.pk for j in jobs.values() if j.pay_mode == PayMode.HOURLY and j.hourly_rate is not None]
    piece_pay = Sum("reward", filter=~Q(job_id__in=hourly)) if hourly else Sum("reward")
    waiting = {
        row["job_id"]: (row["n"], row["pay"] or Decimal("0"))
        for row in shown.order_by().values("job_id").annotate(n=Count("id"), pay=piece_pay)
    }
    if any(job_id in hourly for job_id in waiting):
        for job_id, accepted_at, submitted_at in shown.filter(job_id__in=hourly).values_list(
            "job_id", "accepted_at", "submitted_at"
        ):
            n, total = waiting[job_id]
            pay = pay_for(jobs[job_id], Assignment(accepted_at=accepted_at, submitted_at=submitted_at))
            waiting[job_id] = (n, total + pay)
    return waiting


@dataclass(frozen=True)
class _MyJob:
    """A job the worker submitted work in, with their kept scores there and the block in force, if any."""

    job: Job
    agreement: float | None
    answers: int
    median_seconds: float | None
    fast_share: float | None
    blocked_at: datetime | None
    block_reason: str


def _my_jobs(worker: Worker, job_ids: list[int]) -> dict[int, _MyJob]:
    """The jobs with the worker's ``WorkerJobScore`` and live ``JobBlock`` there (each unique per job and
    worker) joined in: one query. The jobs carry the fields the cards and ``pay_for`` read, nothing else."""
    fields = ("id", "name", "currency", "pay_mode", "hourly_rate", "assignment_duration", "auto_approve_after")
    rows = (
        Job.objects.filter(pk__in=job_ids)
        .annotate(
            my_score=FilteredRelation("worker_scores", condition=Q(worker_scores__worker=worker)),
            my_block=FilteredRelation("blocks", condition=Q(blocks__worker=worker, blocks__lifted_at__isnull=True)),
        )
        .values(
            *fields,
            my_agreement=F("my_score__agreement"),
            my_answers=F("my_score__answers"),
            my_median_seconds=F("my_score__median_seconds"),
            my_fast_share=F("my_score__fast_share"),
            my_blocked_at=F("my_block__created_at"),
            my_block_reason=F("my_block__reason"),
        )
    )
    return {
        row["id"]: _MyJob(
            job=Job(**{name: row[name] for name in fields}),
            agreement=row["my_agreement"],
            answers=row["my_answers"] or 0,
            median_seconds=row["my_median_seconds"],
            fast_share=row["my_fast_share"],
            blocked_at=row["my_blocked_at"],
            block_reason=row["my_block_reason"] or "",
        )
        for row in rows
    }


def list_worker_scorecards(worker: Worker) -> list[WorkerJobScorecard]:
    """The worker's own figures per job they worked on (see the module docstring for what is delayed)."""
    cutoffs = _cutoffs(worker)
    if not cutoffs:
        return []
    mine = _my_jobs(worker, list(cutoffs))
    waiting = _waiting(worker, {job_id: m.job for job_id, m in mine.items()}, timezone.now())
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
    cards = []
    for job_id, (submitted, cutoff) in sorted(cutoffs.items(), reverse=True):
        n, right = grades.get(job_id, (0, 0.0))
        accuracy = gold_accuracy(right, n) if n else None
        my = mine[job_id]
        waiting_n, waiting_pay = waiting.get(job_id, (0, Decimal("0")))
        cards.append(
            WorkerJobScorecard(
                job_id=job_id,
                job_name=my.job.name,
                currency=my.job.currency,
                submitted=submitted,
                counted=submitted // SCORE_BLOCK * SCORE_BLOCK if cutoff is not None else 0,
                gold_answers=n,
                accuracy=accuracy.mean if accuracy else None,
                accuracy_low=accuracy.low if accuracy else None,
                accuracy_high=accuracy.high if accuracy else None,
                agreement=my.agreement,
                answers=my.answers,
                median_seconds=my.median_seconds,
                too_fast=bool(my.fast_share and my.fast_share > 0.5),
                earnings=earnings.get(job_id) or Decimal("0"),
                awaiting_review=waiting_n,
                awaiting_pay=waiting_pay,
                blocked_at=my.blocked_at,
                block_reason=my.block_reason,
            )
        )
    return cards
