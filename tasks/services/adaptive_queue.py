"""Queueing adaptive redundancy's background passes without queueing one per submission.

An allocation pass (``allocate_adaptive_answers_task``) reads every complete Hit of a job, so it is debounced
per job through the cache (shared by every process when ``REDIS_URL`` is set):

- :func:`request_adaptive_allocation` marks the job as *pending* and queues a pass at once unless one was
  queued less than ``ADAPTIVE_ALLOCATION_DEBOUNCE_SECONDS`` ago. A request inside that window stays pending:
  the pass already queued may not see it, so it is not dropped.
- A pending request is queued by the job's next request or Hit completion once the window has passed
  (:func:`flush_adaptive_allocation`), at once when the job has no open work left (its last Hit: nothing
  else would come), and by the periodic sweep (``sweep_adaptive_jobs``).

Without a broker (``CELERY_TASK_ALWAYS_EAGER``) "queued" means run inline after the submit commits, which
is what the debounce saves: one pass per window instead of one per submission. A full re-fit of the worker
skills is queued at most once at a time (:func:`request_adaptive_refit`).
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from tasks.models import Hit, HitState
from tasks.services.errors import QueueUnavailable

PENDING_SECONDS = 24 * 3600  # a pending request outlives any sweep interval
REFIT_CLAIM_SECONDS = 15 * 60  # a refit whose worker died is queued again after this


def _debounce_seconds() -> int:
    return max(int(getattr(settings, "ADAPTIVE_ALLOCATION_DEBOUNCE_SECONDS", 5)), 0)


def _pending_key(job_id: int) -> str:
    return f"adaptive:allocation-pending:{job_id}"


def _queued_key(job_id: int) -> str:
    return f"adaptive:allocation-queued:{job_id}"


def _refit_key(job_id: int) -> str:
    return f"adaptive:refit-queued:{job_id}"


def request_adaptive_allocation(*, job_id: int, now: datetime | None = None) -> bool:
    """Ask for an allocation pass over the job's complete Hits (call it after commit). Returns whether a pass
    was queued now; otherwise the request is pending (see the module's docstring)."""
    cache.add(_pending_key(job_id), (now or timezone.now()).isoformat(), timeout=PENDING_SECONDS)
    return flush_adaptive_allocation(job_id=job_id)


def has_pending_allocation(job_id: int) -> bool:
    return cache.get(_pending_key(job_id)) is not None


def flush_adaptive_allocation(*, job_id: int, force: bool = False) -> bool:
    """Queue the job's pending allocation pass when the debounce window has passed, when the job has no open
    work left, or with ``force``. Returns whether a pass was queued."""
    if not has_pending_allocation(job_id):
        return False
    window = _debounce_seconds()
    claimed = window == 0 or cache.add(_queued_key(job_id), 1, timeout=window)
    if not claimed and not force and _has_open_work(job_id):
        return False
    if window and not claimed:
        cache.set(_queued_key(job_id), 1, timeout=window)
    # Cleared before the pass reads anything: a request arriving from now on is either seen by this pass
    # or pending again.
    cache.delete(_pending_key(job_id))

    try:
        _enqueue("allocate_adaptive_answers_task", job_id)
    except QueueUnavailable:
        # Broker down: keep the request pending for the next request or the sweep, not lost (nor a 500).
        cache.add(_pending_key(job_id), timezone.now().isoformat(), timeout=PENDING_SECONDS)
        cache.delete(_queued_key(job_id))
        return False
    return True


def _has_open_work(job_id: int) -> bool:
    return Hit.objects.filter(
        job_id=job_id, is_gold=False, state__in=[HitState.OPEN, HitState.FULL, HitState.DRAFT]
    ).exists()


def request_adaptive_refit(*, job_id: int) -> bool:
    """Queue a full re-fit of the job's worker skills unless one is already queued or running."""
    if not cache.add(_refit_key(job_id), 1, timeout=REFIT_CLAIM_SECONDS):
        return False

    try:
        _enqueue("refit_adaptive_skills_task", job_id)
    except QueueUnavailable:  # broker down: the next due re-fit asks again
        cache.delete(_refit_key(job_id))
        return False
    return True


def release_adaptive_refit(*, job_id: int) -> None:
    """The re-fit has finished (or failed): the next one may be queued."""
    cache.delete(_refit_key(job_id))


def _enqueue(name: str, job_id: int) -> None:
    """Queue the pass; ``QueueUnavailable`` (logged) when the broker is unreachable."""
    from tasks import adaptive_tasks
    from tasks.tasks import enqueue

    enqueue(getattr(adaptive_tasks, name), job_id=job_id)
