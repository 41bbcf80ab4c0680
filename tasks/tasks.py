"""Celery tasks: thin wrappers over services, named ``<service>_task``."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from kombu.exceptions import OperationalError as BrokerOperationalError

from tasks import adaptive_tasks, mturk_tasks  # noqa: F401  (registers their tasks with the worker)
from tasks.models import Job
from tasks.services.errors import QueueUnavailable, ServiceError
from tasks.services.pool import expire_leases
from tasks.services.publishing import publish_job
from workforce.audit import Actor

logger = logging.getLogger(__name__)

# What ``apply_async``/``delay`` raise when the broker cannot be reached (Celery re-raises its transport's
# connection errors as kombu's OperationalError, which is also ``celery.exceptions.OperationalError``).
BROKER_ERRORS: tuple[type[Exception], ...] = (BrokerOperationalError,)
QUEUE_UNREACHABLE = "The task queue (the Celery broker) cannot be reached right now"


def enqueue(task: Any, /, **kwargs: Any) -> None:
    """Queue ``task`` with keyword arguments; a broker outage raises ``QueueUnavailable`` (not a 500)."""
    try:
        task.apply_async(kwargs=kwargs)
    except BROKER_ERRORS as exc:
        logger.error("could not queue %s: the broker is unreachable (%s)", task.name, exc)
        raise QueueUnavailable(f"{QUEUE_UNREACHABLE}, so nothing was started; try again in a few minutes.") from exc


def ping_broker(url: str, *, timeout: float = 2.0) -> None:
    """Connect to the broker at ``url`` once, giving up after ``timeout`` seconds (raises a BROKER_ERRORS)."""
    app = expire_leases_task.app  # the project's Celery app (with its transport settings), bound at first use
    with app.connection_for_write(url=url, connect_timeout=timeout) as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=max(1, round(timeout)))


def check_queue_reachable(*, timeout: float = 2.0) -> None:
    """Raise one of ``BROKER_ERRORS`` when tasks go through a broker that does not answer (eager mode: no-op).

    For a caller that must refuse before it writes anything (e.g. before an idempotency key's response is stored)."""
    url = settings.CELERY_BROKER_URL
    if url and not settings.CELERY_TASK_ALWAYS_EAGER:
        ping_broker(url, timeout=timeout)


@shared_task(name="tasks.tasks.expire_leases_task")
def expire_leases_task() -> int:
    """Return abandoned leases to the pool (Celery beat runs this every LEASE_SWEEP_SECONDS)."""
    total = 0
    while expired := expire_leases():
        total += expired
    return total


@shared_task(name="tasks.tasks.publish_job_task")
def publish_job_task(*, job_id: int, user_id: int | None = None) -> int:
    job = Job.objects.get(pk=job_id)
    if user_id is not None:
        actor = Actor.from_user(get_user_model().objects.get(pk=user_id))
    else:
        actor = Actor.system("publisher")
    publish_job(job=job, actor=actor)
    return job.pk


@shared_task(name="tasks.tasks.compute_consensus_task")
def compute_consensus_task(*, job_id: int, user_id: int | None = None) -> dict[str, object]:
    from tasks.services.consensus import compute_consensus

    job = Job.objects.get(pk=job_id)
    actor = Actor.from_user(get_user_model().objects.get(pk=user_id)) if user_id else Actor.system("consensus")
    try:
        return compute_consensus(job=job, actor=actor).__dict__
    except ServiceError as exc:  # e.g. no answers yet: the job's state, not a failure to retry
        logger.warning("consensus of job %s not computed: %s", job_id, exc)
        return {"refused": str(exc)}


@shared_task(name="tasks.tasks.refresh_speed_scores_task")
def refresh_speed_scores_task() -> int:
    """The speed signal per worker of every published job with new submissions (Celery beat, every
    SCORE_REFRESH_SECONDS)."""
    from tasks.services.speed import refresh_published_speed_scores

    return refresh_published_speed_scores()


@shared_task(name="tasks.tasks.follow_labeling_jobs_task")
def follow_labeling_jobs_task() -> int:
    """Every running Ground Truth labeling job: status, counters and new results (Celery beat)."""
    from django.conf import settings

    if not settings.GROUNDTRUTH_ENABLED:
        return 0
    from tasks.services.groundtruth.running import follow_labeling_jobs

    return follow_labeling_jobs(actor=Actor.system("groundtruth follower"))


@shared_task(name="tasks.tasks.publish_labeling_job_task", bind=True, max_retries=5)
def publish_labeling_job_task(self: Any, *, job_id: int, user_id: int | None = None) -> str:
    """Publish a job to Ground Truth; a transient AWS error retries with backoff (the name is fixed, so a
    retry adopts a job an earlier try created)."""
    from tasks.services.groundtruth.running import publish_labeling_job
    from workforce.marketplaces.base import MarketplaceError

    job = Job.objects.get(pk=job_id)
    actor = Actor.from_user(get_user_model().objects.get(pk=user_id)) if user_id else Actor.system("publisher")
    try:
        return publish_labeling_job(job=job, actor=actor, budget=job.budget_cap).name
    except MarketplaceError as exc:
        if exc.permanent:
            raise
        raise self.retry(exc=exc, countdown=min(600, 30 * 2**self.request.retries)) from exc


@shared_task(name="tasks.tasks.run_label_export_task")
def run_label_export_task(*, export_id: int) -> dict[str, object]:
    from tasks.models import LabelExport
    from tasks.services.exports import run_label_export

    export = LabelExport.objects.select_related("job", "version", "created_by").get(pk=export_id)
    actor = Actor.from_user(export.created_by) if export.created_by else Actor.system("exporter")
    export = run_label_export(export=export, actor=actor)
    return {"export": export.pk, "state": export.state, "rows": export.rows_done}


@shared_task(name="tasks.tasks.refresh_job_dashboard_task")
def refresh_job_dashboard_task(*, job_id: int) -> int:
    """Recompute the figures of a job's admin page (queued by the page when they are missing or stale)."""
    from tasks.dashboard import refresh_job_dashboard

    job = Job.objects.filter(pk=job_id).first()
    if job is not None:
        refresh_job_dashboard(job)
    return job_id


@shared_task(name="tasks.tasks.auto_review_task")
def auto_review_task() -> dict[str, int]:
    """Approve (or, on failed gold, reject) internal-pool work past its job's auto-approval delay."""
    from tasks.services.review_batch import auto_review

    result = auto_review(actor=Actor.system("auto-review"))
    return {"approved": result.approved, "rejected": result.rejected}


@shared_task(name="tasks.tasks.requeue_stale_exports_task")
def requeue_stale_exports_task() -> int:
    """Queue again the exports still queued EXPORT_REQUEUE_AFTER_SECONDS after they were last sent (their
    message was lost, or the broker was down), and those running with no sign of life for
    EXPORT_STALLED_AFTER_SECONDS (their worker died). Celery beat runs this every EXPORT_SWEEP_SECONDS."""
    from tasks.services.exports import requeue_stale_exports

    return requeue_stale_exports(
        older_than=timedelta(seconds=settings.EXPORT_REQUEUE_AFTER_SECONDS),
        stalled_after=timedelta(seconds=settings.EXPORT_STALLED_AFTER_SECONDS),
    )
