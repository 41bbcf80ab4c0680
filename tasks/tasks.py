"""Celery tasks: thin wrappers over services, named ``<service>_task``."""

from __future__ import annotations

from celery import shared_task
from django.contrib.auth import get_user_model

from tasks.models import Job
from tasks.services.pool import expire_leases
from tasks.services.publishing import publish_job
from workforce.audit import Actor


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
    return compute_consensus(job=job, actor=actor).__dict__


@shared_task(name="tasks.tasks.refresh_speed_scores_task")
def refresh_speed_scores_task() -> int:
    """Every published job's speed signal per worker (Celery beat, every SCORE_REFRESH_SECONDS)."""
    from tasks.models import JobState
    from tasks.services.quality import refresh_speed_scores

    return sum(refresh_speed_scores(job=job) for job in Job.objects.filter(state=JobState.PUBLISHED))


@shared_task(name="tasks.tasks.auto_review_task")
def auto_review_task() -> dict[str, int]:
    """Approve (or, on failed gold, reject) internal-pool work past its job's auto-approval delay."""
    from tasks.services.review import auto_review

    result = auto_review(actor=Actor.system("auto-review"))
    return {"approved": result.approved, "rejected": result.rejected}
