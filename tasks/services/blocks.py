"""Lifting a worker's block from a job (the block itself is written by the policy in ``quality.py``)."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from tasks.models import JobBlock
from tasks.services.errors import ServiceError
from workforce.audit import Actor, record_audit_event


def lift_job_block(*, block: JobBlock, actor: Actor, reason: str, now: datetime | None = None) -> JobBlock:
    """Let the worker work on the job again; the block row stays as history, with ``lifted_at`` set."""
    reason = reason.strip()
    if not reason:
        raise ServiceError("Give a reason for lifting the block.")
    now = now or timezone.now()
    with transaction.atomic():
        if not JobBlock.objects.filter(pk=block.pk, lifted_at__isnull=True).update(lifted_at=now):
            raise ServiceError("This block was already lifted.")
        record_audit_event(
            actor=actor,
            action="worker.unblocked_from_job",
            object_type="worker",
            object_id=block.worker_id,
            before={"job": block.job_id, "blocked": True, "block_reason": block.reason},
            after={"job": block.job_id, "blocked": False},
            reason=reason,
        )
    block.lifted_at = now
    return block
