"""Workforce writes: registering workers."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from workforce.audit import Actor, record_audit_event
from workforce.models import Marketplace, Worker


def register_internal_worker(*, user: Any, actor: Actor, display_name: str = "") -> Worker:
    """Give a Django user a worker identity in the internal pool (idempotent)."""
    with transaction.atomic():
        worker, created = Worker.objects.get_or_create(
            marketplace=Marketplace.INTERNAL,
            external_id=f"user-{user.pk}",
            defaults={"user": user, "display_name": display_name or user.get_username()},
        )
        if created:
            record_audit_event(
                actor=actor,
                action="worker.registered",
                object_type="worker",
                object_id=worker.pk,
                after={"marketplace": worker.marketplace, "external_id": worker.external_id},
            )
    return worker


def get_or_create_workers(*, marketplace: str, external_ids: list[str]) -> dict[str, Worker]:
    """Workers by external id, creating the missing ones in bulk (marketplace imports, simulator)."""
    with transaction.atomic():
        existing = {
            w.external_id: w for w in Worker.objects.filter(marketplace=marketplace, external_id__in=external_ids)
        }
        missing = [eid for eid in dict.fromkeys(external_ids) if eid not in existing]
        if missing:
            Worker.objects.bulk_create(
                [Worker(marketplace=marketplace, external_id=eid, display_name=eid) for eid in missing],
                ignore_conflicts=True,
            )
            existing = {
                w.external_id: w for w in Worker.objects.filter(marketplace=marketplace, external_id__in=external_ids)
            }
    return existing
