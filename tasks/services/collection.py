"""Collecting work: a worker's answers for an assignment become ``Answer`` rows.

``submit_assignment`` is the internal pool's path (web page, simulator, API). It refuses expired
leases and never lets a Hit collect more submitted assignments than it wants, under any concurrency.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from tasks.models import (
    Answer,
    Assignment,
    AssignmentState,
    Hit,
    HitItem,
    HitState,
    Job,
    JobState,
)
from tasks.services.errors import SubmissionRefused
from tasks.services.pool import expire_leases
from workforce.models import Worker

_REFUSALS = {
    AssignmentState.SUBMITTED: "This task was already submitted.",
    AssignmentState.APPROVED: "This task was already submitted and approved.",
    AssignmentState.REJECTED: "This task was already submitted and reviewed.",
    AssignmentState.RETURNED: "You returned this task, so it can no longer be submitted.",
    AssignmentState.EXPIRED: "Your time for this task ran out and it went back to the pool; nothing was saved.",
}


def validate_value(job: Job, value: Any) -> Any:
    """Check one answer against the job's label set; return it normalised or raise SubmissionRefused."""
    labels = [str(label) for label in job.labels]
    if job.is_multilabel:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SubmissionRefused("A multi-label answer must be a list of labels.")
        unknown = sorted(set(value) - set(labels))
        if unknown:
            raise SubmissionRefused(f"Unknown label(s): {', '.join(unknown)}.")
        return [label for label in labels if label in set(value)]
    if not isinstance(value, str) or value not in labels:
        raise SubmissionRefused(f"Choose one of the job's labels ({', '.join(labels)}), not {value!r}.")
    return value


# Count one submission and complete the Hit with its last wanted answer, in one conditional statement:
# the guard ``assignments_submitted < assignments_wanted`` is what keeps a Hit from over-collecting.
_COUNT_SUBMISSION_SQL = """
UPDATE tasks_hit
SET assignments_submitted = assignments_submitted + 1,
    state = CASE
        WHEN assignments_submitted + 1 >= assignments_wanted AND state IN ('open', 'full') THEN 'complete'
        ELSE state
    END
WHERE id = %s AND assignments_submitted < assignments_wanted
RETURNING state
"""


def submit_assignment(
    *, assignment: Assignment, worker: Worker, answers: Mapping[int, Any], now: datetime | None = None
) -> Assignment:
    """Store ``answers`` (item id -> value) for the worker's leased assignment, all or nothing."""
    now = now or timezone.now()
    expired = False
    with transaction.atomic():
        locked = (
            Assignment.objects.select_for_update(of=("self",))
            .select_related("job")
            .filter(pk=assignment.pk, worker_id=worker.pk)
            .first()
        )
        if locked is None:
            raise SubmissionRefused("This task is not yours.")
        if locked.state != AssignmentState.ACCEPTED:
            raise SubmissionRefused(_REFUSALS[AssignmentState(locked.state)])
        job = locked.job
        if job.state == JobState.CANCELLED:
            raise SubmissionRefused("This job was cancelled, so the task can no longer be submitted.")
        if locked.lease_expires_at <= now:
            expired = True
        else:
            item_ids = list(HitItem.objects.filter(hit_id=locked.hit_id).values_list("item_id", flat=True))
            missing = [i for i in item_ids if i not in answers]
            extra = [i for i in answers if i not in set(item_ids)]
            if missing:
                raise SubmissionRefused(f"Answer every item before submitting ({len(missing)} left).")
            if extra:
                raise SubmissionRefused("The answers include items that are not part of this task.")
            values = {item_id: validate_value(job, answers[item_id]) for item_id in item_ids}
            with connection.cursor() as cursor:
                cursor.execute(_COUNT_SUBMISSION_SQL, [locked.hit_id])
                counted = cursor.fetchone()
            if counted is None:
                raise SubmissionRefused("This task already has all the answers it needs.")
            Answer.objects.bulk_create(
                [
                    Answer(
                        assignment=locked,
                        item_id=item_id,
                        job_id=job.pk,
                        worker_id=worker.pk,
                        value=value,
                        created_at=now,
                    )
                    for item_id, value in values.items()
                ]
            )
            Assignment.objects.filter(pk=locked.pk).update(state=AssignmentState.SUBMITTED, submitted_at=now)
            if (
                counted[0] == HitState.COMPLETE
                and not Hit.objects.filter(
                    job_id=job.pk, state__in=[HitState.OPEN, HitState.FULL, HitState.DRAFT]
                ).exists()
            ):
                Job.objects.filter(pk=job.pk, state=JobState.PUBLISHED).update(
                    state=JobState.COMPLETED, completed_at=now
                )
            locked.state = AssignmentState.SUBMITTED
            locked.submitted_at = now
    if expired:
        expire_leases(now=now, job=job)
        raise SubmissionRefused(_REFUSALS[AssignmentState.EXPIRED])
    return locked
