"""Job lifecycle: publish, pause, resume, cancel. Transitions are conditional updates."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from tasks.models import Assignment, AssignmentState, Hit, HitState, Job, JobState
from tasks.reports.estimate import estimate_job_cost
from tasks.services import hits as hit_services
from tasks.services.budget import BudgetExceeded, check_budget, reserve_budget, settle_job_budget
from tasks.services.errors import InvalidTransition, ServiceError
from tasks.services.pool import assignment_state_event
from workforce.audit import Actor, QueuedEvent, queue_audit_events, record_audit_event
from workforce.models import Marketplace


def _transition(
    *, job: Job, allowed: Iterable[str], target: str, actor: Actor, action: str, reason: str = "", **extra: object
) -> Job:
    """Move the job from one of ``allowed`` to ``target`` and audit it, in one transaction: the row is locked
    before its state is read, so the audit event's "before" is the state the change really left. (A caller
    that also changes the job's Hits locks them before calling this: Hit rows, then the job row.)"""
    allowed = tuple(allowed)
    with transaction.atomic():
        current = Job.objects.select_for_update().filter(pk=job.pk).values_list("state", flat=True).first()
        if current not in allowed:
            raise InvalidTransition(
                f"Job {job.pk} is {current}; it can be {action.split('.')[-1]} only when it is {' or '.join(allowed)}."
            )
        Job.objects.filter(pk=job.pk).update(state=target, updated_at=timezone.now(), **extra)
        record_audit_event(
            actor=actor,
            action=action,
            object_type="job",
            object_id=job.pk,
            before={"state": current},
            after={"state": target},
            reason=reason,
        )
    job.refresh_from_db()
    return job


def check_publishable(job: Job) -> None:
    """Raise ServiceError with the reason when ``job`` cannot be published as it stands."""
    if job.state != JobState.DRAFT:
        raise InvalidTransition(f"Job {job.pk} is {job.state}; only draft jobs can be published.")
    if job.internal_only and job.marketplace != Marketplace.INTERNAL:
        # Sensitive data never leaves for an external marketplace, whatever a connector would allow.
        raise ServiceError(
            f"Job {job.pk} is internal-only, so it cannot be published to {job.get_marketplace_display()}."
        )
    if job.marketplace not in (Marketplace.INTERNAL, Marketplace.MTURK):
        raise ServiceError(f"Publishing to {job.get_marketplace_display()} is not available in this version.")
    if not job.labels or not isinstance(job.labels, list) or len(job.labels) < 2:
        raise ServiceError("A job needs at least two labels before it can be published.")
    if not job.items.exists():
        raise ServiceError("Import items before publishing the job.")
    check_budget(job=job, amount=estimate_job_cost(job).total)


def request_publish(*, job: Job, actor: Actor) -> None:
    """Check the job can be published, then publish it in the background (Celery; inline without a broker)."""
    from tasks.tasks import enqueue, publish_job_task  # the task module imports this one

    if job.marketplace == Marketplace.GROUNDTRUTH:
        _request_groundtruth_publish(job=job, actor=actor)
        return
    check_publishable(job)
    if job.marketplace == Marketplace.MTURK:
        from tasks.services.mturk_publishing import check_mturk_publishable

        check_mturk_publishable(job=job)  # refuses early: settings, requirements, the account's balance
    user_id = int(actor.id) if actor.kind == "user" and actor.id else None
    # Nothing was written here, so the task is queued at once: a broker that is down raises QueueUnavailable
    # inside the caller's transaction (an Idempotency-Key's response is then not stored, and a retry runs).
    enqueue(publish_job_task, job_id=job.pk, user_id=user_id)


def _request_groundtruth_publish(*, job: Job, actor: Actor) -> None:
    """A Ground Truth job runs as one SageMaker labeling job, published in the background (a retry adopts
    the labeling job an earlier try created: its name is fixed)."""
    from django.conf import settings

    from tasks.models import LabelingJob
    from tasks.services.groundtruth.running import publication_cost
    from tasks.tasks import enqueue, publish_labeling_job_task

    if job.state != JobState.DRAFT:
        raise InvalidTransition(f"Job {job.pk} is {job.state}; only draft jobs can be published.")
    if job.internal_only:
        raise ServiceError(f"Job {job.pk} is internal-only, so it cannot be published to SageMaker Ground Truth.")
    if not settings.GROUNDTRUTH_ENABLED:
        raise ServiceError("Ground Truth is not enabled here (set GROUNDTRUTH_ENABLED and its settings).")
    labeling_job = LabelingJob.objects.filter(job=job).first()
    if labeling_job is None:
        raise ServiceError(
            f"Configure job {job.pk}'s Ground Truth settings (Ground Truth labeling jobs > Add) before publishing."
        )
    if not job.items.exists():
        raise ServiceError("Import items before publishing the job.")
    # The background task reserves this before asking AWS; a cap that cannot take it is refused here, now.
    check_budget(job=job, amount=publication_cost(job=job, labeling_job=labeling_job, budget=job.budget_cap))
    user_id = int(actor.id) if actor.kind == "user" and actor.id else None
    enqueue(publish_labeling_job_task, job_id=job.pk, user_id=user_id)  # nothing written here: queued at once


def publish_job(*, job: Job, actor: Actor) -> Job:
    """Build the job's Hits and open them to workers (internal pool)."""
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        check_publishable(locked)
        job = _transition(
            job=locked,
            allowed=[JobState.DRAFT],
            target=JobState.PUBLISHED,
            actor=actor,
            action="job.published",
            published_at=timezone.now(),
        )
        mturk = job.marketplace == Marketplace.MTURK
        # MTurk Hits stay draft until the MTurk publisher has created each one remotely (in the background).
        hit_services.build_hits(job=job, open_now=not mturk)
        # The worst case is reserved before any Hit opens; over the cap, the whole publish rolls back. Its gold
        # overhead prices a number of gold leases; the pool reserves each one beyond them as it hands it out.
        estimate = estimate_job_cost(job)
        reserve_budget(job=job, amount=estimate.total, key=f"job:{job.pk}:publish", actor=actor, reason="publish")
        Job.objects.filter(pk=job.pk).update(gold_leases_priced=estimate.gold_assignments)
        if mturk:
            from tasks.mturk_tasks import publish_mturk_hits_task
            from tasks.tasks import enqueue

            transaction.on_commit(partial(enqueue, publish_mturk_hits_task, job_id=job.pk))
        else:
            Hit.objects.filter(job=job, state=HitState.DRAFT).update(state=HitState.OPEN)
        job.refresh_from_db(fields=["budget_reserved"])
    return job


def _mturk_availability(job: Job, *, open_: bool) -> None:
    """MTurk has no pause: its HITs are expired (or given a new expiry) in the background after commit."""
    if job.marketplace == Marketplace.MTURK:
        from tasks.mturk_tasks import set_mturk_job_availability_task
        from tasks.tasks import enqueue

        transaction.on_commit(partial(enqueue, set_mturk_job_availability_task, job_id=job.pk, open_=open_))


def pause_job(*, job: Job, actor: Actor, reason: str = "") -> Job:
    """Stop handing out new work; leases already given may still be submitted."""
    job = _transition(
        job=job, allowed=[JobState.PUBLISHED], target=JobState.PAUSED, actor=actor, action="job.paused", reason=reason
    )
    _mturk_availability(job, open_=False)
    return job


def resume_job(*, job: Job, actor: Actor) -> Job:
    """Hand out work again. An MTurk job's HITs go live again, and MTurk takes back into escrow what it gave
    back for their unfilled slots at the pause: a budget (the job's cap or the month's) that cannot take that
    refuses the resume, before MTurk is asked."""
    if job.marketplace == Marketplace.MTURK and job.state == JobState.PAUSED:
        from tasks.services.mturk_escrow import unfilled_held_back

        held_back = unfilled_held_back(job)
        if held_back > 0:
            try:
                check_budget(job=job, amount=held_back)
            except BudgetExceeded as exc:
                raise BudgetExceeded(
                    f"Resuming puts {held_back:.2f} {job.currency} back into MTurk's escrow for the unfilled "
                    f"assignments: {exc}"
                ) from exc
    job = _transition(job=job, allowed=[JobState.PAUSED], target=JobState.PUBLISHED, actor=actor, action="job.resumed")
    _mturk_availability(job, open_=True)
    return job


def _lock_live_work(job: Job) -> tuple[list[int], int]:
    """Lock the rows a cancel changes before the job's row (``_transition``), in the order every path takes
    them: the job's live leases (a submit locks its assignment, then its Hit, then the job), then its Hits in
    id order (the pool, submissions and allocation passes lock Hits before the job). Complete Hits too: an
    allocation pass locks the complete Hits it may reopen and then checks the job's state under the job's
    lock, so whichever of the two locks a Hit first, the other waits there holding nothing the first needs,
    and a pass that gets the Hit after the cancel committed finds the job cancelled. Returns the leases' ids
    and the number of Hits locked."""
    live = Assignment.objects.filter(job_id=job.pk, state=AssignmentState.ACCEPTED)
    leases = list(live.select_for_update().order_by("pk").values_list("pk", flat=True))
    hits = _live_hits(job).select_for_update().order_by("pk")
    return leases, len(list(hits.values_list("pk", flat=True)))


def _live_hits(job: Job) -> QuerySet[Hit]:
    return Hit.objects.filter(job_id=job.pk).exclude(state=HitState.CANCELLED)


def _hit_cancelled_event(actor: Actor, hit_id: int, before: str, reason: str) -> QueuedEvent:
    """The audit event of one Hit closed by a cancel (``hit.cancelled``), queued with the others in one batch."""
    return QueuedEvent(
        actor=actor,
        action="hit.cancelled",
        object_type="hit",
        object_id=hit_id,
        before={"state": before},
        after={"state": HitState.CANCELLED.value},
        reason=reason,
    )


_CANCEL_ATTEMPTS = 3


class _HitsAdded(Exception):
    """Hits were added to the job between the cancel's locking its Hits and its locking the job's row."""


def cancel_job(*, job: Job, actor: Actor, reason: str = "") -> Job:
    """Cancel the job: its Hits that are not complete are cancelled and its leases end. Nothing reopens or
    extends a Hit of the job once the cancel has committed (every such path checks the job's state under the
    job's row lock, which it takes after the Hits, as the cancel does)."""
    for _ in range(_CANCEL_ATTEMPTS):
        try:
            return _cancel(job=job, actor=actor, reason=reason)
        except _HitsAdded:
            continue  # nothing was written: lock the job's Hits again, the added ones too
    raise ServiceError(f"Hits were being added to job {job.pk} while it was cancelled; cancel it again.")


def _cancel(*, job: Job, actor: Actor, reason: str) -> Job:
    with transaction.atomic():
        leases, held = _lock_live_work(job)
        # The job's row after its Hits. A Hit added since they were locked (by an import or a publish that held
        # the row and committed meanwhile) would be changed below, after the row, where a worker's transaction
        # holding it and waiting for the row would deadlock with this one: try again instead, locking it with
        # the others. Once the row is held, no Hit can be added (inserting one takes a share of the row's lock).
        Job.objects.select_for_update().filter(pk=job.pk).values_list("pk", flat=True).first()
        if _live_hits(job).count() != held:
            raise _HitsAdded
        job = _transition(
            job=job,
            allowed=[JobState.DRAFT, JobState.PUBLISHED, JobState.PAUSED],
            target=JobState.CANCELLED,
            actor=actor,
            action="job.cancelled",
            reason=reason,
        )
        # The Hits it closes (not complete, not already cancelled) with their states: all of them locked above.
        closing = Hit.objects.filter(job=job).exclude(state__in=[HitState.COMPLETE, HitState.CANCELLED])
        closed = list(closing.order_by("pk").values_list("pk", "state"))
        closing.update(state=HitState.CANCELLED)
        # Leases still out end now (locked above, so still accepted); their workers are told on their next page.
        Assignment.objects.filter(pk__in=leases, state=AssignmentState.ACCEPTED).update(state=AssignmentState.EXPIRED)
        why = f"The job was cancelled: {reason}" if reason else "The job was cancelled."
        expired = [
            assignment_state_event(actor, pk, AssignmentState.ACCEPTED, AssignmentState.EXPIRED, why) for pk in leases
        ]
        # One insert for every Hit and lease the cancel closed.
        queue_audit_events([_hit_cancelled_event(actor, pk, state, why) for pk, state in closed] + expired)
        _mturk_availability(job, open_=False)
        settle_job_budget(job=job, actor=actor, reason="job cancelled")
    return job
