"""Celery tasks for MTurk: thin wrappers over ``tasks.services.mturk_*``, retrying temporary failures."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from tasks.models import Job
from workforce.audit import Actor
from workforce.marketplaces.base import MarketplaceError


def _system(name: str) -> Actor:
    return Actor.system(name)


@shared_task(
    name="tasks.mturk_tasks.publish_mturk_hits_task",
    autoretry_for=(MarketplaceError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def publish_mturk_hits_task(*, job_id: int) -> dict[str, Any]:
    from tasks.services.mturk_publishing import publish_mturk_hits

    result = publish_mturk_hits(job=Job.objects.get(pk=job_id), actor=_system("mturk publisher"))
    if result.failed:  # temporary failures: the claims go stale and this task (or beat) takes them again
        raise MarketplaceError(f"{len(result.failed)} HIT(s) not published yet", permanent=False)
    return {"published": result.published, "adopted": result.adopted}


@shared_task(name="tasks.mturk_tasks.publish_pending_mturk_hits_task")
def publish_pending_mturk_hits_task() -> int:
    from tasks.services.mturk_publishing import publish_pending_mturk_hits

    result = publish_pending_mturk_hits(actor=_system("mturk publisher"))
    return result.published + result.adopted


@shared_task(
    name="tasks.mturk_tasks.collect_mturk_work_task",
    autoretry_for=(MarketplaceError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def collect_mturk_work_task() -> int:
    from tasks.services.mturk_collect import collect_mturk_work

    return collect_mturk_work(actor=_system("mturk collector")).assignments_created


@shared_task(
    name="tasks.mturk_tasks.consume_mturk_notifications_task",
    autoretry_for=(MarketplaceError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def consume_mturk_notifications_task() -> int:
    import boto3

    from tasks.services.mturk_collect import consume_mturk_notifications

    if not settings.MTURK_SQS_QUEUE_URL:
        return 0
    sqs = boto3.client("sqs", region_name="us-east-1")
    result = consume_mturk_notifications(
        sqs=sqs, queue_url=settings.MTURK_SQS_QUEUE_URL, actor=_system("mturk notifications")
    )
    return result.assignments_created


@shared_task(
    name="tasks.mturk_tasks.guard_mturk_auto_approval_task",
    autoretry_for=(MarketplaceError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def guard_mturk_auto_approval_task() -> dict[str, int]:
    from tasks.services.mturk_review import guard_mturk_auto_approval

    result = guard_mturk_auto_approval(actor=_system("mturk review guard"))
    return {"approved": len(result.approved), "flagged": len(result.flagged), "failed": len(result.failed)}


@shared_task(
    name="tasks.mturk_tasks.send_mturk_bonus_task",
    autoretry_for=(MarketplaceError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def send_mturk_bonus_task(*, assignment_id: int, amount: str, reason: str, idempotency_key: str) -> bool:
    """A bonus on an MTurk assignment through ``review.pay_bonus`` (the one bonus path), retried while
    MTurk has not confirmed it (same key, same token: paid once)."""
    from decimal import Decimal

    from tasks.models import Assignment
    from tasks.services.review import BonusNotConfirmed, pay_bonus

    assignment = Assignment.objects.select_related("job", "worker").get(pk=assignment_id)
    try:
        return pay_bonus(
            job=assignment.job,
            worker=assignment.worker,
            assignment=assignment,
            amount=Decimal(amount),
            reason=reason,
            key=idempotency_key,
            actor=_system("mturk bonuses"),
        )
    except BonusNotConfirmed as exc:
        if exc.permanent:
            raise
        raise MarketplaceError(str(exc), permanent=False) from exc


@shared_task(
    name="tasks.mturk_tasks.retry_pending_mturk_bonuses_task",
    autoretry_for=(MarketplaceError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def retry_pending_mturk_bonuses_task() -> int:
    from tasks.services.mturk_review import retry_pending_mturk_bonuses

    return retry_pending_mturk_bonuses(actor=_system("mturk bonuses"))


@shared_task(
    name="tasks.mturk_tasks.set_mturk_job_availability_task",
    autoretry_for=(MarketplaceError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def set_mturk_job_availability_task(*, job_id: int, open_: bool) -> int:
    from tasks.services.mturk_hits import set_mturk_job_availability

    return set_mturk_job_availability(job=Job.objects.get(pk=job_id), open_=open_, actor=_system("mturk"))


@shared_task(
    name="tasks.mturk_tasks.reconcile_mturk_hits_task",
    autoretry_for=(MarketplaceError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def reconcile_mturk_hits_task() -> dict[str, int]:
    from tasks.services.mturk_hits import reconcile_mturk_hits

    result = reconcile_mturk_hits(actor=_system("mturk reconcile"))
    return {
        "adopted": len(result.adopted),
        "expired": len(result.expired),
        "reopened": len(result.reopened),
        "extended": len(result.extended),
    }


@shared_task(
    name="tasks.mturk_tasks.delete_done_mturk_hits_task",
    autoretry_for=(MarketplaceError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def delete_done_mturk_hits_task() -> int:
    from tasks.services.mturk_hits import delete_done_mturk_hits

    return delete_done_mturk_hits(actor=_system("mturk housekeeping"))
