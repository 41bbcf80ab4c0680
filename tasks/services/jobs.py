"""Creating and configuring jobs from code (commands, API); the admin uses its ModelForm."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from tasks.models import Job, TaskKind
from tasks.services.errors import ServiceError
from workforce.audit import Actor, record_audit_event


def create_job(
    *,
    name: str,
    task_kind: str,
    labels: list[str],
    actor: Actor,
    redundancy: int = 3,
    reward: Decimal = Decimal("0.05"),
    instructions: str = "",
    description: str = "",
    items_per_hit: int = 1,
    assignment_duration: timedelta = timedelta(minutes=10),
    created_by: Any = None,
) -> Job:
    if task_kind not in TaskKind.values:
        raise ServiceError(f"Unknown task kind {task_kind!r}; use one of: {', '.join(TaskKind.values)}.")
    clean = [str(label).strip() for label in labels]
    if len(clean) < 2 or len(set(clean)) != len(clean) or not all(clean):
        raise ServiceError("A job needs at least two distinct, non-empty labels.")
    if not isinstance(reward, Decimal):
        raise ServiceError("The reward must be a Decimal amount.")
    job = Job(
        name=name,
        task_kind=task_kind,
        labels=clean,
        redundancy=redundancy,
        reward=reward,
        instructions=instructions,
        description=description,
        items_per_hit=items_per_hit,
        assignment_duration=assignment_duration,
        created_by=created_by,
    )
    try:
        job.full_clean()
    except ValidationError as exc:
        raise ServiceError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
    with transaction.atomic():
        job.save()
        record_audit_event(
            actor=actor,
            action="job.created",
            object_type="job",
            object_id=job.pk,
            after={
                "name": name,
                "task_kind": task_kind,
                "labels": clean,
                "redundancy": redundancy,
                "reward": str(reward),
            },
        )
    return job
