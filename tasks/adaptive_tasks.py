"""Celery tasks for adaptive redundancy: thin wrappers over ``tasks.services.adaptive``."""

from __future__ import annotations

from celery import shared_task

from tasks.models import Job
from workforce.audit import Actor
from workforce.marketplaces.base import MarketplaceError


@shared_task(name="tasks.adaptive_tasks.refit_adaptive_skills_task")
def refit_adaptive_skills_task(*, job_id: int) -> int:
    """Refit the job's cached worker skills; then hand the answers that wanted them out, best gain first."""
    from tasks.services.adaptive import refit_and_allocate

    return refit_and_allocate(job_id=job_id, actor=Actor.system("adaptive"))


@shared_task(
    name="tasks.adaptive_tasks.allocate_adaptive_answers_task",
    autoretry_for=(MarketplaceError,),
    retry_backoff=True,
    max_retries=5,
)
def allocate_adaptive_answers_task(*, job_id: int) -> int:
    from tasks.services.adaptive import allocate_adaptive_answers

    return allocate_adaptive_answers(job=Job.objects.get(pk=job_id), actor=Actor.system("adaptive"))


@shared_task(name="tasks.adaptive_tasks.sweep_adaptive_jobs_task")
def sweep_adaptive_jobs_task() -> tuple[int, int]:
    """Celery beat: periodic re-fits and held-back allocation passes of published adaptive jobs."""
    from tasks.services.adaptive import sweep_adaptive_jobs

    return sweep_adaptive_jobs()
