"""Celery tasks of the qualification app (thin wrappers over services)."""

from __future__ import annotations

from celery import shared_task

from qualification.services import expire_overdue_attempts


@shared_task(name="qualification.tasks.expire_overdue_attempts_task")
def expire_overdue_attempts_task() -> int:
    """Close test attempts whose deadline passed (they also close lazily on the worker's next request)."""
    return expire_overdue_attempts()
