"""Job templates: a new draft job with an existing job's configuration (no items, no work)."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from tasks.models import Job
from tasks.services.instructions import record_instructions_version
from workforce.audit import Actor, record_audit_event

# Everything an ops manager configures; state, timestamps and counters start afresh.
CLONED_FIELDS = (
    "description",
    "instructions",
    "task_kind",
    "labels",
    "redundancy",
    "items_per_hit",
    "reward",
    "currency",
    "assignment_duration",
    "marketplace",
    "consensus_method",
    "requirements",
    "block_below_accuracy",
    "block_after_gold",
    "trusted_test_id",
    "trusted_min_accuracy",
    "training_mode",
    "gold_rate",
    "gold_boost_rate",
    "gold_boost_until",
)


def clone_job(*, job: Job, actor: Actor, name: str = "", created_by: Any = None) -> Job:
    """A new draft job configured like ``job`` (named ``name``, or "<name> (copy)")."""
    with transaction.atomic():
        clone = Job(name=name or f"{job.name} (copy)"[:200], created_by=created_by)
        for attribute in CLONED_FIELDS:
            setattr(clone, attribute, getattr(job, attribute))
        clone.save()
        record_audit_event(
            actor=actor,
            action="job.cloned",
            object_type="job",
            object_id=clone.pk,
            after={"from_job": job.pk, "name": clone.name},
        )
        if clone.instructions:
            record_instructions_version(job=clone, text=clone.instructions, actor=actor, user=created_by)
    return clone
