"""The job page's figures, in two parts so a big job's page stays fast.

``get_job_glance``: state, progress bars and cost so far, read on every view from the job's tallies (rows
kept by database triggers, ``tasks.models.tallies``) and one index range: milliseconds whatever the job's
size, always current. The forecast at completion (the finance report's rule) reads the job's ledger rows, so
it is one of the cached figures below, not the glance's.

``get_job_dashboard``: the charts (throughput, quality, label distribution, confusion), the workers on
the job, the fair-pay check and adaptive redundancy's progress. Every query is bounded by an index on the
job (and, for throughput, by a time window) or runs over per-worker rows (or, for adaptive progress, over
the job's Hits), but on a job with millions of answers they take seconds, so they are cached and refreshed
in Celery (stale-while-revalidate).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models import Avg, Count
from django.db.models.functions import TruncHour
from django.utils import timezone

from tasks.console_selectors import CostSummary, count_confident, count_labeled, get_cost_summary
from tasks.models import Answer, Assignment, ConsensusLabel, Item, Job, LabelExport, WorkerJobScore
from tasks.reports.fair_pay import FairPay, configured_minimum, get_fair_pay
from tasks.reports.selectors import get_observed_cost, project_total
from tasks.selectors import JobProgress, JobTotals, get_job_progress, get_job_totals
from tasks.selectors_adaptive import AdaptiveProgress, get_adaptive_progress
from tasks.services.errors import QueueUnavailable

DASHBOARD_FRESH_SECONDS = 60  # older figures are shown, and refreshed in the background
DASHBOARD_KEEP_SECONDS = 24 * 3600
INLINE_MAX_HITS = 20_000  # above this, a job's figures are only ever computed in Celery
THROUGHPUT_HOURS = 24
ACCURACY_BINS = 10


@dataclass
class JobDashboard:
    job: int
    progress: JobProgress
    labeled: int
    confident: int
    items: int | None
    throughput: list[tuple[datetime, int]]
    accuracy_histogram: list[int]
    workers: int
    mean_agreement: float | None
    label_distribution: list[tuple[str, int]]
    confusion_labels: list[str]
    confusion: list[list[int]]
    cost: CostSummary
    forecast: Decimal | None
    top_workers: list[dict[str, Any]] = field(default_factory=list)
    computed_at: datetime | None = None
    exports: list[LabelExport] = field(default_factory=list)
    fair_pay: FairPay | None = None
    adaptive: AdaptiveProgress | None = None  # adaptive redundancy's progress (None: fixed redundancy)


def _throughput(job: Job, now: datetime) -> list[tuple[datetime, int]]:
    """Assignments submitted per hour over the last day (read through the (job, submitted_at) index)."""
    start = (now - timedelta(hours=THROUGHPUT_HOURS - 1)).replace(minute=0, second=0, microsecond=0)
    rows = (
        Assignment.objects.filter(job=job, submitted_at__gte=start)
        .annotate(hour=TruncHour("submitted_at"))
        .values("hour")
        .annotate(n=Count("id"))
        .values_list("hour", "n")
    )
    counts = dict(rows)
    return [(start + timedelta(hours=h), counts.get(start + timedelta(hours=h), 0)) for h in range(THROUGHPUT_HOURS)]


def _accuracy(job: Job) -> tuple[list[int], int, float | None, list[dict[str, Any]]]:
    scores = list(
        WorkerJobScore.objects.filter(job=job)
        .select_related("worker")
        .only("accuracy", "agreement", "answers", "gold_answers", "worker__external_id", "worker__display_name")
    )
    histogram = [0] * ACCURACY_BINS
    for s in scores:
        if s.accuracy is not None:
            histogram[min(int(s.accuracy * ACCURACY_BINS), ACCURACY_BINS - 1)] += 1
    agreement = WorkerJobScore.objects.filter(job=job, agreement__isnull=False).aggregate(a=Avg("agreement"))["a"]
    top = sorted(scores, key=lambda s: -s.answers)[:10]
    workers = [
        {
            # The cached figures are shared by every viewer: the page names the worker for its viewer
            # (``workforce.privacy``), so the marketplace id is kept here and masked when shown.
            "display_name": s.worker.display_name,
            "external_id": s.worker.external_id,
            "answers": s.answers,
            "accuracy": s.accuracy,
            "agreement": s.agreement,
            "gold": s.gold_answers,
        }
        for s in top
    ]
    return histogram, len(scores), agreement, workers


def _label_distribution(job: Job) -> list[tuple[str, int]]:
    rows = ConsensusLabel.objects.filter(job=job).values("value").annotate(n=Count("id")).values_list("value", "n")
    counts: Counter[str] = Counter()
    for value, n in rows:
        for label in value if isinstance(value, list) else [value]:
            counts[str(label)] += n
    order = {str(label): i for i, label in enumerate(job.labels)}
    return sorted(counts.items(), key=lambda kv: order.get(kv[0], len(order)))


def _confusion(job: Job) -> tuple[list[str], list[list[int]]]:
    """Rows: the gold answer; columns: the crowd's majority answer on that gold item (single-label jobs)."""
    labels = [str(label) for label in job.labels]
    matrix = [[0] * len(labels) for _ in labels]
    if job.is_multilabel:
        return labels, matrix
    gold = dict(Item.objects.filter(job=job, is_gold=True).values_list("id", "gold_answer"))
    if not gold:
        return labels, matrix
    votes: dict[int, Counter[str]] = defaultdict(Counter)
    # Through the answers' item index, gold item by gold item: never a pass over all the job's answers.
    rows = (
        Answer.objects.filter(item_id__in=Item.objects.filter(job=job, is_gold=True).values("id"))
        .values("item_id", "value")
        .annotate(n=Count("id"))
        .values_list("item_id", "value", "n")
    )
    for item_id, value, n in rows:
        votes[item_id][str(value)] += n
    position = {label: i for i, label in enumerate(labels)}
    for item_id, counter in votes.items():
        crowd = counter.most_common(1)[0][0]
        expected = str(gold.get(item_id))
        if expected in position and crowd in position:
            matrix[position[expected]][position[crowd]] += 1
    return labels, matrix


def _forecast(job: Job, progress: JobProgress, cost: CostSummary) -> Decimal | None:
    """The cost at completion by the job report's rule (``tasks.reports.selectors.project_total``: the remaining
    answers at the observed cost of a paid assignment, bonuses and escrow left out, slots MTurk holds in escrow
    not added twice), so the job page (its cached figures) and the finance report show the same projected
    total. None while the job wants no answers.

    The rule's observed cost is read from the job's ledger rows (two grouped queries, ~50 ms per 100,000 rows
    on PostgreSQL), not from its tallies: they sum by kind, status and marketplace only."""
    if not progress.answers_wanted:
        return None
    remaining = max(progress.answers_wanted - progress.answers_submitted, 0)
    return project_total(job, total=cost.total, remaining=remaining, observed=get_observed_cost(job)).projected_total


@dataclass(frozen=True)
class JobGlance:
    """What the job's page shows first, always current: progress, confident items, cost so far."""

    progress: JobProgress
    items: int
    confident: int
    cost: CostSummary


def get_job_glance(job: Job, *, totals: JobTotals | None = None) -> JobGlance:
    """Read from the job's tallies (``totals`` when the caller has them) and the confident end of the
    (job, confidence) index: a few ms at any size."""
    totals = totals or get_job_totals(job)
    progress = JobProgress(
        hits=totals.hits,
        hits_complete=totals.hits_complete,
        answers_wanted=totals.answers_wanted,
        answers_submitted=totals.answers_submitted,
        open_slots=totals.answers_wanted - totals.slots_taken,
    )
    return JobGlance(progress=progress, items=totals.items, confident=count_confident(job), cost=get_cost_summary(job))


def compute_job_dashboard(job: Job) -> JobDashboard:
    """Every figure of the job page, computed now (seconds on a job with millions of answers)."""
    progress = get_job_progress(job)
    labeled, confident = count_labeled(job)
    histogram, workers, agreement, top = _accuracy(job)
    confusion_labels, confusion = _confusion(job)
    cost = get_cost_summary(job)
    return JobDashboard(
        job=job.pk,
        progress=progress,
        labeled=labeled,
        confident=confident,
        items=progress.hits * job.items_per_hit if progress.hits else None,
        throughput=_throughput(job, timezone.now()),
        accuracy_histogram=histogram,
        workers=workers,
        mean_agreement=agreement,
        label_distribution=_label_distribution(job),
        confusion_labels=confusion_labels,
        confusion=confusion,
        cost=cost,
        forecast=_forecast(job, progress, cost),
        top_workers=top,
        computed_at=timezone.now(),
        # The check reads every approved assignment of the job; only worth it when a minimum is set.
        fair_pay=get_fair_pay(job) if configured_minimum() is not None else None,
        # The status API's figures; their Hit aggregate reads every Hit of the job (0.17 s at 500,000).
        adaptive=get_adaptive_progress(job),
    )


def cache_key(job_id: int) -> str:
    return f"job-dashboard:v2:{job_id}"  # v2: top workers carry their id, not a display string


def refresh_job_dashboard(job: Job) -> JobDashboard:
    """Compute the job's figures and keep them for the page (the Celery task calls this)."""
    dashboard = compute_job_dashboard(job)
    cache.set(cache_key(job.pk), dashboard, DASHBOARD_KEEP_SECONDS)
    cache.delete(f"{cache_key(job.pk)}:refreshing")
    return dashboard


def _queue_refresh(job: Job) -> None:
    from tasks.tasks import enqueue, refresh_job_dashboard_task  # the task module imports this one

    # One refresh at a time per job, whoever asks.
    def queue() -> None:
        try:
            enqueue(refresh_job_dashboard_task, job_id=job.pk)
        except QueueUnavailable:  # broker down: the page shows what it has; a later view asks again
            cache.delete(f"{cache_key(job.pk)}:refreshing")

    if cache.add(f"{cache_key(job.pk)}:refreshing", True, DASHBOARD_FRESH_SECONDS):
        transaction.on_commit(queue)


def get_job_dashboard(job: Job, *, use_cache: bool = True, hits: int | None = None) -> JobDashboard | None:
    """The job page's figures, stale-while-revalidate: cached figures are shown at once and refreshed in the
    background once older than a minute. A small job without cached figures gets them computed inline; a big
    one (over ``INLINE_MAX_HITS`` Hits; ``hits`` when the caller has read the job's tally) gets None now and its
    figures on a reload."""
    if not use_cache:
        return compute_job_dashboard(job)
    cached: JobDashboard | None = cache.get(cache_key(job.pk))
    if cached is None:
        if (get_job_totals(job).hits if hits is None else hits) > INLINE_MAX_HITS:
            _queue_refresh(job)
            return None
        cached = refresh_job_dashboard(job)
    elif cached.computed_at is None or (timezone.now() - cached.computed_at).total_seconds() > DASHBOARD_FRESH_SECONDS:
        _queue_refresh(job)
    return cached
