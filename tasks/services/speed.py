"""Workers' speed scores per job: median seconds per item and share of too-fast tasks.

Set-based over many jobs: one query reads the submitted work of every job to refresh, with each task's
duration computed by the database, and one upsert writes every score. The periodic refresh takes only the
jobs with a submission newer than the one their scores already include (``Job.speed_scores_through``,
found through the ``(job, submitted_at)`` index), so a run with nothing new reads no assignment rows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np
from django.db import transaction
from django.db.models import DurationField, ExpressionWrapper, F, OuterRef, Q, Subquery
from django.utils import timezone

from tasks.models import Assignment, Job, JobState, WorkerJobScore
from workforce.scoring import speed_signal

UPSERT_BATCH = 2000
READ_CHUNK = 20000


def _durations() -> ExpressionWrapper:
    return ExpressionWrapper(F("submitted_at") - F("accepted_at"), output_field=DurationField())


def _score_jobs(items_per_hit: Mapping[int, int], now: datetime) -> int:
    """Recompute the speed scores of the jobs ``items_per_hit`` names (job id -> items per Hit); returns how
    many worker scores were written."""
    rows = (
        Assignment.objects.filter(job_id__in=list(items_per_hit), submitted_at__isnull=False, hit__is_gold=False)
        .annotate(took=_durations())
        .order_by()
        .values_list("job_id", "worker_id", "took")
        .iterator(chunk_size=READ_CHUNK)
    )
    jobs_l: list[int] = []
    workers_l: list[int] = []
    seconds_l: list[float] = []
    for job_id, worker_id, took in rows:
        jobs_l.append(job_id)
        workers_l.append(worker_id)
        seconds_l.append(took.total_seconds())
    if not jobs_l:
        return 0
    jobs = np.array(jobs_l, dtype=np.int64)
    workers = np.array(workers_l, dtype=np.int64)
    seconds = np.array(seconds_l, dtype=np.float64)
    order = np.argsort(jobs, kind="stable")
    jobs, workers, seconds = jobs[order], workers[order], seconds[order]
    job_ids, starts = np.unique(jobs, return_index=True)
    ends = [*starts[1:], len(jobs)]
    scores: list[WorkerJobScore] = []
    for job_id, start, end in zip(job_ids, starts, ends, strict=True):
        job_seconds = seconds[start:end] / items_per_hit[int(job_id)]
        worker_ids, codes = np.unique(workers[start:end], return_inverse=True)
        medians, fast_share, _ = speed_signal(codes, job_seconds, len(worker_ids))
        scores.extend(
            WorkerJobScore(
                job_id=int(job_id), worker_id=int(w), median_seconds=float(m), fast_share=float(f), updated_at=now
            )
            for w, m, f in zip(worker_ids, medians, fast_share, strict=True)
        )
    WorkerJobScore.objects.bulk_create(
        scores,
        update_conflicts=True,
        unique_fields=["job", "worker"],
        update_fields=["median_seconds", "fast_share", "updated_at"],
        batch_size=UPSERT_BATCH,
    )
    return len(scores)


def refresh_speed_scores(*, job: Job, now: datetime | None = None) -> int:
    """Every worker's median seconds per item and share of too-fast tasks on ``job``; returns how many."""
    with transaction.atomic():
        return _score_jobs({job.pk: job.items_per_hit}, now or timezone.now())


def refresh_published_speed_scores(*, now: datetime | None = None) -> int:
    """The speed scores of every published job with a submission their scores do not include yet (Celery
    beat, every SCORE_REFRESH_SECONDS); returns how many worker scores were written."""
    now = now or timezone.now()
    latest = Subquery(
        Assignment.objects.filter(job_id=OuterRef("pk"), submitted_at__isnull=False)
        .order_by("-submitted_at")
        .values("submitted_at")[:1]
    )
    stale = list(
        Job.objects.filter(state=JobState.PUBLISHED)
        .annotate(latest=latest)
        .filter(Q(speed_scores_through__isnull=True) | Q(latest__gt=F("speed_scores_through")), latest__isnull=False)
        .order_by()
        .values_list("pk", "items_per_hit", "latest")
    )
    if not stale:
        return 0
    with transaction.atomic():
        written = _score_jobs({pk: per_hit for pk, per_hit, _ in stale}, now)
        # What the scores include now: a submission that commits later (with an earlier time) waits for the next.
        Job.objects.bulk_update(
            [Job(pk=pk, speed_scores_through=through) for pk, _, through in stale], ["speed_scores_through"]
        )
    return written
