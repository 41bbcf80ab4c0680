"""Asking for more answers on Hits (e.g. where consensus is short of its target), within budget."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from django.db import transaction
from django.db.models import Case, F, Value, When

from tasks.models import Hit, HitState, Job, JobState
from tasks.reports.estimate import hits_cost
from tasks.services.budget import reserve_budget
from tasks.services.errors import ServiceError
from workforce.audit import Actor, record_audit_event

# A job whose Hits may be asked for more answers: running (paused too) or completed, never draft or cancelled.
TAKES_MORE_ANSWERS = (JobState.PUBLISHED, JobState.PAUSED, JobState.COMPLETED)


def request_more_answers(
    *, job: Job, hit_ids: Sequence[int], extra: int, actor: Actor, request_key: str | None = None
) -> int:
    """Want ``extra`` more answers on each of the job's Hits ``hit_ids``, after reserving their worst-case
    cost; raises ``BudgetExceeded`` (nothing changed) when a cap would be exceeded. Returns the Hits changed.

    ``request_key`` names the request (a form's nonce, a task id): the same key again changes nothing and
    returns 0, however long after. Without it the reservation is keyed on the Hits' state before the
    change, which only dedupes a retry of an attempt that did not commit."""
    if extra < 1:
        raise ServiceError("Ask for at least one more answer.")
    wanted_ids = sorted(set(hit_ids))
    if not wanted_ids:
        raise ServiceError("Choose at least one Hit.")
    with transaction.atomic():
        # The Hit rows in id order, then the job's row: the lock order of every path (the pool, submissions,
        # allocation passes, cancel_job). The caller must not hold the job's row already.
        rows = list(
            Hit.objects.select_for_update()
            .filter(job_id=job.pk, pk__in=wanted_ids, is_gold=False)
            .exclude(state=HitState.CANCELLED)
            .order_by("pk")
            .values_list("pk", "assignments_wanted")
        )
        # A cancel that committed first wins, and nothing is reserved or reopened; one that comes after waits
        # for these Hits and then cancels what this request reopens.
        state = Job.objects.select_for_update().filter(pk=job.pk).values_list("state", flat=True).first()
        if state not in TAKES_MORE_ANSWERS:
            raise ServiceError(f"Job {job.pk} is {state}; it takes no more answers.")
        if len(rows) != len(wanted_ids):
            raise ServiceError("Some of these Hits are not live, non-gold Hits of this job.")
        digest = request_key or hashlib.sha256(repr((rows, extra)).encode()).hexdigest()[:32]
        amount = hits_cost(job, hit_count=len(rows), extra_per_hit=extra)
        _, created = reserve_budget(
            job=job, amount=amount, key=f"job:{job.pk}:more:{digest}", actor=actor, reason="more answers"
        )
        if not created:
            return 0
        Hit.objects.filter(pk__in=wanted_ids).update(
            assignments_wanted=F("assignments_wanted") + extra,
            state=Case(
                When(state__in=[HitState.FULL, HitState.COMPLETE], then=Value(HitState.OPEN)), default=F("state")
            ),
        )
        reopened = Job.objects.filter(pk=job.pk, state=JobState.COMPLETED).update(
            state=JobState.PUBLISHED, completed_at=None
        )
        record_audit_event(
            actor=actor,
            action="job.more_answers_requested",
            object_type="job",
            object_id=job.pk,
            before={"state": state},
            after={
                "state": JobState.PUBLISHED.value if reopened else state,
                "hits": len(rows),
                "extra": extra,
                "reserved": str(amount),
            },
        )
    return len(rows)


def reopen_after_more_work(
    *, job_id: int, actor: Actor, action: str, after: dict[str, object], reopen: bool = True
) -> bool:
    """Audit more work asked of a job's Hits elsewhere (MTurk extended them) and, with ``reopen``, publish the job
    again if it had completed, in one transaction under the job's row lock: the event holds the job's state before
    and after. Returns whether the job was reopened."""
    with transaction.atomic():
        state = Job.objects.select_for_update().values_list("state", flat=True).get(pk=job_id)
        reopened = reopen and bool(
            Job.objects.filter(pk=job_id, state=JobState.COMPLETED).update(state=JobState.PUBLISHED, completed_at=None)
        )
        record_audit_event(
            actor=actor,
            action=action,
            object_type="job",
            object_id=job_id,
            before={"state": state},
            after={"state": JobState.PUBLISHED.value if reopened else state, **after},
        )
    return reopened
