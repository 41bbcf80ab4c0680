"""Versioned job instructions (Markdown). Each change is a new ``JobInstructions`` row; the job keeps the
latest text and its number, and every new assignment records the number its worker was shown."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from tasks.models import Job, JobInstructions, JobState
from tasks.services.errors import ServiceError
from workforce.audit import Actor, record_audit_event

RUNNING_STATES = (JobState.PUBLISHED, JobState.PAUSED)


class ConfirmationRequired(ServiceError):
    """Changing a running job's instructions needs an explicit confirmation."""


def check_instructions_change(*, job: Job, text: str, confirmed: bool) -> None:
    if job.state in RUNNING_STATES and text != job.instructions and not confirmed:
        raise ConfirmationRequired(
            f"Job {job.pk} is {job.state}: workers already follow its instructions. "
            "Confirm the change to give new assignments the new version."
        )


def record_instructions_version(*, job: Job, text: str, actor: Actor, user: Any = None) -> JobInstructions:
    """Store ``text`` as the job's next instructions version (inside the caller's transaction)."""
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        number = locked.instructions_version + 1
        version = JobInstructions.objects.create(
            job=locked, version=number, text=text, created_by=user, created_at=timezone.now()
        )
        Job.objects.filter(pk=job.pk).update(instructions=text, instructions_version=number)
        job.instructions, job.instructions_version = text, number
        record_audit_event(
            actor=actor,
            action="job.instructions_versioned",
            object_type="job",
            object_id=job.pk,
            after={"version": number, "state": locked.state},
        )
    return version


def update_instructions(
    *, job: Job, text: str, actor: Actor, confirmed: bool = False, user: Any = None
) -> JobInstructions:
    """Change a job's instructions; a published or paused job needs ``confirmed=True``."""
    with transaction.atomic():
        stored = Job.objects.select_for_update().get(pk=job.pk)
        check_instructions_change(job=stored, text=text, confirmed=confirmed)
        if text == stored.instructions and stored.instructions_version:
            raise ServiceError("The instructions are unchanged.")
        return record_instructions_version(job=job, text=text, actor=actor, user=user)
