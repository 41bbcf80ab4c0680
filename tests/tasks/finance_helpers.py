"""Helpers for finance tests: submitted work through the real pool and collection services."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from tasks.models import Assignment, Job
from tasks.selectors import list_hit_items
from tasks.services.collection import submit_assignment
from tasks.services.pool import assign_next_hit
from workforce.models import Worker


def submit_work(job: Job, worker: Worker, *, answer: str = "pos", now: datetime | None = None) -> Assignment:
    """The worker takes the next Hit of ``job`` and submits ``answer`` for each of its items."""
    assignment = assign_next_hit(job=job, worker=worker)
    items = [item.pk for item in list_hit_items(assignment.hit_id)]
    return submit_assignment(assignment=assignment, worker=worker, answers=dict.fromkeys(items, answer), now=now)


def submit_after(job: Job, worker: Worker, seconds: int) -> Assignment:
    """Submitted ``seconds`` after it was accepted (the active time hourly pay measures)."""
    assignment = assign_next_hit(job=job, worker=worker)
    items = [item.pk for item in list_hit_items(assignment.hit_id)]
    Assignment.objects.filter(pk=assignment.pk).update(
        accepted_at=timezone.now() - timedelta(seconds=seconds), lease_expires_at=timezone.now() + timedelta(hours=1)
    )
    return submit_assignment(assignment=assignment, worker=worker, answers=dict.fromkeys(items, "pos"))
