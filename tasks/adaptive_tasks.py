"""Celery tasks for adaptive redundancy: thin wrappers over ``tasks.services.adaptive``."""

from __future__ import annotations

from celery import shared_task

from tasks.models import Job
from workforce.audit import Actor
from workforce.marketplaces.base import MarketplaceError


@shared_task(name="tasks.adaptive_tasks.refit_adaptive_skills_task")
def refit_adaptive_skills_task(*, job_id: int) -> int:
    """Refit the job's cached worker skills; then hand the answers that wanted them out, best gain first."""
    from tasks.services.adaptive import allocate_adaptive_answers, refit_adaptive_skills

    job = Job.objects.get(pk=job_id)
    row = refit_adaptive_skills(job=job, actor=Actor.system("adaptive"))
    allocate_adaptive_answers(job=job)
    return row.answers_at_fit


@shared_task(
    name="tasks.adaptive_tasks.allocate_adaptive_answers_task",
    autoretry_for=(MarketplaceError,),
    retry_backoff=True,
    max_retries=5,
)
def allocate_adaptive_answers_task(*, job_id: int) -> int:
    from tasks.services.adaptive import allocate_adaptive_answers

    return allocate_adaptive_answers(job=Job.objects.get(pk=job_id), actor=Actor.system("adaptive"))
