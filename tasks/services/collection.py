"""Collecting work: a worker's answers for an assignment become ``Answer`` rows.

``submit_assignment`` is the internal pool's path (web page, simulator, API). It refuses expired
leases and never lets a Hit collect more submitted assignments than it wants, under any concurrency.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from qualification.gold_placement import place_on_page
from tasks.models import (
    Answer,
    Assignment,
    AssignmentGoldItem,
    AssignmentState,
    Hit,
    HitItem,
    HitState,
    Item,
    Job,
    JobBlock,
    JobState,
)
from tasks.selectors import unmet_job_requirements
from tasks.services import hot_sql
from tasks.services.adaptive import after_hit_completed
from tasks.services.errors import SubmissionRefused
from tasks.services.pool import expire_leases
from tasks.services.quality import grade_gold_answers
from workforce.audit import PENDING_EVENT_INSERT, Actor, hot_statement_audit_params, queue_audit_event
from workforce.models import Worker

_REFUSALS = {
    AssignmentState.SUBMITTED: "This task was already submitted.",
    AssignmentState.APPROVED: "This task was already submitted and approved.",
    AssignmentState.REJECTED: "This task was already submitted and reviewed.",
    AssignmentState.RETURNED: "You returned this task, so it can no longer be submitted.",
    AssignmentState.EXPIRED: "Your time for this task ran out and it went back to the pool; nothing was saved.",
}
_CANCELLED = "This job was cancelled, so the task can no longer be submitted."
_BLOCKED = "You can no longer work on this job, so the task was not saved."
SHOWN_VALUE_LENGTH = 40  # how much of a refused value a message repeats back


def shown_value(text: str) -> str:
    """A refused value as a message quotes it: at most ``SHOWN_VALUE_LENGTH`` characters (a page may post
    a value of any length, and the message goes into the session and the page)."""
    return text if len(text) <= SHOWN_VALUE_LENGTH else text[:SHOWN_VALUE_LENGTH] + "…"


def _closed_refusal(locked: Assignment, job: Job, worker: Worker) -> str:
    """Why an assignment that is no longer accepted cannot be submitted. Cancelling a job and blocking a
    worker both end the lease as ``expired``; the worker is told that reason, not that time ran out."""
    state = AssignmentState(locked.state)
    if state == AssignmentState.EXPIRED:
        if job.state == JobState.CANCELLED:
            return _CANCELLED
        if JobBlock.objects.filter(job=job, worker=worker, lifted_at__isnull=True).exists():
            return _BLOCKED
    return _REFUSALS[state]


def validate_value(job: Job, value: Any, payload: Mapping[str, Any] | None = None) -> Any:
    """Check one answer against the job's label set (and, for drawings, the item's image size given by
    ``payload``); return it normalised or raise SubmissionRefused."""
    labels = [str(label) for label in job.labels]
    if job.is_shapes:
        from tasks.services.shapes import image_size, validate_shapes  # numpy/scipy only where drawings exist

        size = image_size(payload) if payload is not None else None
        return validate_shapes(job.task_kind, labels, value, size or (math.inf, math.inf))
    if job.is_multilabel:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SubmissionRefused("A multi-label answer must be a list of labels.")
        unknown = sorted(set(value) - set(labels))
        if unknown:
            shown = ", ".join(shown_value(label) for label in unknown[:5]) + (", …" if len(unknown) > 5 else "")
            raise SubmissionRefused(f"Unknown label(s): {shown}.")
        return [label for label in labels if label in set(value)]
    if not isinstance(value, str) or value not in labels:
        shown = shown_value(repr(value))
        raise SubmissionRefused(f"Choose one of the job's labels ({', '.join(labels)}), not {shown}.")
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
WHERE id = %(hit)s AND assignments_submitted < assignments_wanted
RETURNING state
"""

# PostgreSQL: the same count, the answers, the assignment's new state and its (unchained, see
# workforce.audit) "assignment.submitted" event in one round trip. The inserts and the update only take
# effect when the count did (they read ``counted``).
_RECORD_SQL_POSTGRES = (
    "WITH counted AS ("
    + _COUNT_SUBMISSION_SQL
    + """), answered AS (
    INSERT INTO tasks_answer (assignment_id, item_id, job_id, worker_id, value, created_at)
    SELECT %(assignment)s, x.item_id, %(job)s, %(worker)s, x.value, %(now)s
    FROM counted, unnest(%(items)s::bigint[], %(values)s::jsonb[]) AS x(item_id, value)
), marked AS (
    UPDATE tasks_assignment SET state = 'submitted', submitted_at = %(now)s
    WHERE id = %(assignment)s AND EXISTS (SELECT 1 FROM counted)
), audited AS (
    """
    + PENDING_EVENT_INSERT
    + """
    SELECT %(now)s, %(audit_actor_kind)s, %(audit_actor_id)s, %(audit_actor_label)s, 'assignment.submitted',
        'assignment', %(assignment)s::bigint::text, '{"state": "accepted"}'::jsonb, %(audit_after)s::jsonb,
        '', %(audit_request_id)s
    FROM counted
)
SELECT state FROM counted"""
)


def _record(*, assignment: Assignment, worker: Worker, values: dict[int, Any], now: datetime) -> str | None:
    """Write the submission; return the Hit's new state, or None when it already had every answer."""
    params: dict[str, Any] = {"hit": assignment.hit_id, "assignment": assignment.pk, "now": now}
    if connection.vendor == "postgresql":
        params |= {
            "job": assignment.job_id,
            "worker": worker.pk,
            "items": list(values),
            "values": [json.dumps(v) for v in values.values()],
            "audit_after": json.dumps(_submitted_after(values)),
            **hot_statement_audit_params(Actor.from_worker(worker)),
        }
        row = hot_sql.fetch_one(_RECORD_SQL_POSTGRES, params)
        return None if row is None else str(row[0])
    with connection.cursor() as cursor:
        cursor.execute(_COUNT_SUBMISSION_SQL, params)
        row = cursor.fetchone()
    if row is None:
        return None
    Answer.objects.bulk_create(
        [
            Answer(
                assignment=assignment, item_id=i, job_id=assignment.job_id, worker_id=worker.pk, value=v, created_at=now
            )
            for i, v in values.items()
        ]
    )
    Assignment.objects.filter(pk=assignment.pk).update(state=AssignmentState.SUBMITTED, submitted_at=now)
    queue_audit_event(
        actor=Actor.from_worker(worker),
        action="assignment.submitted",
        object_type="assignment",
        object_id=assignment.pk,
        before={"state": AssignmentState.ACCEPTED.value},
        after=_submitted_after(values),
        created_at=now,
    )
    return str(row[0])


def _submitted_after(values: dict[int, Any]) -> dict[str, Any]:
    return {"state": AssignmentState.SUBMITTED.value, "answers": {str(i): v for i, v in values.items()}}


def _lock_assignment(assignment: Assignment | UUID, worker: Worker) -> Assignment | None:
    """The worker's assignment, row-locked, with its job and (on PostgreSQL in the same query) the item ids
    of its page in order: the Hit's own items with the gold placed on this page (``AssignmentGoldItem``)."""
    query = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("job", "hit")
        .defer("job__instructions", "job__description")  # long texts the submit never reads
        .filter(worker_id=worker.pk)
    )
    query = query.filter(uuid=assignment) if isinstance(assignment, UUID) else query.filter(pk=assignment.pk)
    if connection.vendor == "postgresql":
        item_ids = HitItem.objects.filter(hit_id=OuterRef("hit_id")).order_by("position").values("item_id")
        placed = AssignmentGoldItem.objects.filter(assignment_id=OuterRef("pk")).order_by("position")
        query = query.annotate(
            own_ids=ArraySubquery(item_ids),
            gold_ids=ArraySubquery(placed.values("item_id")),
            gold_places=ArraySubquery(placed.values("position")),
        )
    locked = query.first()
    if locked is None:
        return None
    if connection.vendor == "postgresql":
        own, gold = locked.own_ids, list(zip(locked.gold_places, locked.gold_ids, strict=True))  # type: ignore[attr-defined]
    else:
        own = list(HitItem.objects.filter(hit_id=locked.hit_id).order_by("position").values_list("item_id", flat=True))
        placed = AssignmentGoldItem.objects.filter(assignment_id=locked.pk)  # only Hits with gold places have any
        gold = list(placed.values_list("position", "item_id")) if locked.hit.gold_slots else []
    locked.item_ids = place_on_page(own, gold)  # type: ignore[attr-defined]
    locked.has_placed_gold = bool(gold)  # type: ignore[attr-defined]
    return locked


def _by_item(answers: Mapping[int, Any], item_ids: list[int]) -> dict[int, Any]:
    """Answers keyed by place on the page (1 is first) -> keyed by item id."""
    if any(not 1 <= place <= len(item_ids) for place in answers):
        raise SubmissionRefused("The answers include items that are not part of this task.")
    return {item_ids[place - 1]: value for place, value in answers.items()}


def complete_job_if_done(job_id: int, now: datetime) -> bool:
    """Mark a published job completed when none of its Hits wants answers any more.

    The job row is locked before the Hits are counted (and after the Hit the submit holds: Hit rows, then the
    job row, the lock order of every path): two last submits on different Hits then take turns here, and
    the second one's query (a new statement, so under READ COMMITTED it sees what committed before it)
    finds the first one's Hit complete. Without the lock each could see the other's Hit unfinished, and the
    job would stay published with all its work done."""
    if not list(Job.objects.select_for_update().filter(pk=job_id, state=JobState.PUBLISHED).values_list("pk")):
        return False
    unfinished = Hit.objects.filter(
        job_id=job_id, is_gold=False, state__in=[HitState.OPEN, HitState.FULL, HitState.DRAFT]
    )
    return bool(Job.objects.filter(~Exists(unfinished), pk=job_id).update(state=JobState.COMPLETED, completed_at=now))


def job_completed_event(job_id: int, reason: str) -> dict[str, Any]:
    """The audit event of ``complete_job_if_done`` having completed the job (without its actor)."""
    return {
        "action": "job.completed",
        "object_type": "job",
        "object_id": job_id,
        "before": {"state": JobState.PUBLISHED.value},
        "after": {"state": JobState.COMPLETED.value},
        "reason": reason,
    }


def submit_assignment(
    *,
    assignment: Assignment | UUID,
    worker: Worker,
    answers: Mapping[int, Any],
    by_place: bool = False,
    now: datetime | None = None,
    also: Callable[[Assignment], object] | None = None,
) -> Assignment:
    """Store ``answers`` (item id -> value) for the worker's leased assignment, all or nothing.

    ``assignment`` is the row or its UUID. ``by_place``: ``answers`` are keyed by the item's place on the
    worker's page instead (1 is first; ``tasks.selectors.list_page_items``), as the worker pages send them.
    For multi-label jobs an item left out is an empty selection (a page sends nothing for unticked boxes);
    for single-label jobs every item needs a label. ``also`` writes what else belongs to the submission
    (e.g. a layout's form fields), in the same transaction, once the answers are recorded.
    """
    now = now or timezone.now()
    expired = False
    with transaction.atomic():
        locked = _lock_assignment(assignment, worker)
        if locked is None:
            raise SubmissionRefused("This task is not yours.")
        job = locked.job
        if locked.state != AssignmentState.ACCEPTED:
            raise SubmissionRefused(_closed_refusal(locked, job, worker))
        if job.state == JobState.CANCELLED:
            raise SubmissionRefused(_CANCELLED)
        # Workers blocked by the job's policy lose their open leases too (checked only where blocks exist).
        if (locked.hit.is_gold or job.block_below_accuracy is not None) and JobBlock.objects.filter(
            job=job, worker=worker, lifted_at__isnull=True
        ).exists():
            raise SubmissionRefused(_BLOCKED)
        if job.requirements and (unmet := unmet_job_requirements(job, worker)):
            raise SubmissionRefused("You no longer meet this job's requirements: " + " ".join(unmet))
        if locked.lease_expires_at <= now:
            expired = True
        else:
            item_ids: list[int] = locked.item_ids  # type: ignore[attr-defined]
            if by_place:
                answers = _by_item(answers, item_ids)
            known = set(item_ids)
            if any(i not in known for i in answers):
                raise SubmissionRefused("The answers include items that are not part of this task.")
            if job.is_multilabel:
                answers = {i: answers.get(i, []) for i in item_ids}
            missing = [i for i in item_ids if i not in answers]
            if missing:
                raise SubmissionRefused(f"Answer every item before submitting ({len(missing)} left).")
            payloads: dict[int, Any] = (
                dict(Item.objects.filter(id__in=item_ids).values_list("id", "payload")) if job.is_shapes else {}
            )
            values = {item_id: validate_value(job, answers[item_id], payloads.get(item_id)) for item_id in item_ids}
            hit_state = _record(assignment=locked, worker=worker, values=values, now=now)
            if hit_state is None:
                raise SubmissionRefused("This task already has all the answers it needs.")
            locked.state = AssignmentState.SUBMITTED
            locked.submitted_at = now
            if also is not None:
                also(locked)
            if locked.hit.is_gold or locked.has_placed_gold:  # type: ignore[attr-defined]
                grade_gold_answers(assignment=locked, job=job, worker=worker, now=now)
                locked.refresh_from_db(fields=["state", "reviewed_at"])  # a gold policy may have rejected it
            elif (
                hit_state == HitState.COMPLETE
                and job.adaptive_min_answers is not None  # an attribute: other jobs pay no query here
                and after_hit_completed(job=job, hit_id=locked.hit_id, now=now)
            ):
                hit_state = HitState.OPEN  # reopened for one more answer
            if hit_state == HitState.COMPLETE and complete_job_if_done(job.pk, now):
                # queued like the submit that caused it, so it is chained after it
                queue_audit_event(
                    actor=Actor.system("collection"),
                    **job_completed_event(job.pk, "Every Hit has all the answers it wants."),
                )
    if expired:
        expire_leases(now=now, job=job)
        raise SubmissionRefused(_REFUSALS[AssignmentState.EXPIRED])
    return locked
