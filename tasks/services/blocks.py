"""Lifting a worker's block from a job (the block itself is written by the policy in ``quality.py``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from tasks.models import JobBlock
from tasks.services.errors import ServiceError
from workforce.audit import Actor, QueuedEvent, record_audit_events


def _clean_reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise ServiceError("Give a reason for lifting the block.")
    return reason


def _unblocked_event(block: JobBlock, *, actor: Actor, reason: str) -> QueuedEvent:
    """The audit event of one lifted block (the same whether lifted alone or with others)."""
    return QueuedEvent(
        actor=actor,
        action="worker.unblocked_from_job",
        object_type="worker",
        object_id=block.worker_id,
        before={"job": block.job_id, "blocked": True, "block_reason": block.reason},
        after={"job": block.job_id, "blocked": False},
        reason=reason,
    )


def lift_job_block(*, block: JobBlock, actor: Actor, reason: str, now: datetime | None = None) -> JobBlock:
    """Let the worker work on the job again; the block row stays as history, with ``lifted_at`` set."""
    reason = _clean_reason(reason)
    now = now or timezone.now()
    with transaction.atomic():
        if not JobBlock.objects.filter(pk=block.pk, lifted_at__isnull=True).update(lifted_at=now):
            raise ServiceError("This block was already lifted.")
        record_audit_events([_unblocked_event(block, actor=actor, reason=reason)])
    block.lifted_at = now
    return block


def lift_job_blocks(
    *, blocks: QuerySet[JobBlock] | Iterable[JobBlock], actor: Actor, reason: str, now: datetime | None = None
) -> list[JobBlock]:
    """``lift_job_block`` for many blocks at once, set-based: the blocks still in force among ``blocks`` are
    locked (in id order) and lifted by one update, and their audit events appended in one batch, so the
    queries do not grow with the number of blocks. Blocks already lifted are left as they are (not an error:
    someone lifted them first). Returns the blocks this call lifted, in id order."""
    reason = _clean_reason(reason)
    now = now or timezone.now()
    chosen = blocks.values("pk") if isinstance(blocks, QuerySet) else [b.pk for b in blocks]
    with transaction.atomic():
        locked = list(
            JobBlock.objects.select_for_update()
            .filter(pk__in=chosen, lifted_at__isnull=True)
            .defer("evidence")
            .order_by("pk")
        )
        if not locked:
            return []
        JobBlock.objects.filter(pk__in=[b.pk for b in locked]).update(lifted_at=now)
        record_audit_events([_unblocked_event(b, actor=actor, reason=reason) for b in locked])
    for block in locked:
        block.lifted_at = now
    return locked
