"""Celery tasks of the workforce app (thin wrappers, named ``<service>_task``)."""

from __future__ import annotations

from celery import shared_task

from workforce.audit import seal_all_audit_events


@shared_task(name="workforce.tasks.seal_audit_events_task")
def seal_audit_events_task() -> int:
    """Chain the hot paths' pending audit events (Celery beat, every AUDIT_SEAL_SECONDS)."""
    return seal_all_audit_events()
