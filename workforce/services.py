"""Workforce writes: registering workers, erasing their personal data on request."""

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
                # No display name: the marketplace id is personal data and must not show wherever a worker does.
                [Worker(marketplace=marketplace, external_id=eid) for eid in missing],
                ignore_conflicts=True,
            )
            existing = {
                w.external_id: w for w in Worker.objects.filter(marketplace=marketplace, external_id__in=external_ids)
            }
    return existing


def pseudonymise_worker(*, worker: Worker, actor: Actor, reason: str = "") -> Worker:
    """Erase a worker's personal data on request, keeping every row that points at them valid.

    The worker row stays (the ledger's ``CostEntry.worker``, assignments, answers and scores keep their
    foreign keys, so costs and consensus are unchanged); its marketplace id and display name are replaced
    by ``erased-<pk>``, and its Django user, if any, is renamed, stripped of name and e-mail, deactivated
    and left without a usable password.

    The audit chain is not touched, so ``audit_verify`` still passes: sealed events are never rewritten.
    Events written since workers are labelled by our own id (``Actor.from_worker``: "worker <pk>") hold
    no marketplace id or name; older events that do keep them, as the audit record the law lets us keep
    (GDPR art. 17(3)(b) and (e)); only staff with the audit permission can read them. The new
    ``worker.pseudonymised`` event names the worker by pk only and does not repeat the old values.
    """
    with transaction.atomic():
        locked = Worker.objects.select_for_update(of=("self",)).select_related("user").get(pk=worker.pk)
        if locked.external_id == f"erased-{locked.pk}":
            raise WorkerError(f"Worker {locked.pk} was already pseudonymised.")
        locked.external_id = f"erased-{locked.pk}"
        locked.display_name = f"erased worker {locked.pk}"
        locked.save(update_fields=["external_id", "display_name"])
        erased_fields = ["external_id", "display_name"]
        user = locked.user
        if user is not None:
            user.username = f"erased-user-{user.pk}"
            user.first_name = user.last_name = user.email = ""
            user.is_active = False
            user.set_unusable_password()
            user.save(update_fields=["username", "first_name", "last_name", "email", "is_active", "password"])
            # An inactive user's open sessions stop working at once (WorkerAwareBackend.get_user refuses them).
            erased_fields += ["user.username", "user.name", "user.email", "user.password"]
        record_audit_event(
            actor=actor,
            action="worker.pseudonymised",
            object_type="worker",
            object_id=locked.pk,
            after={"erased": erased_fields, "marketplace": locked.marketplace},
            reason=reason,
        )
    return locked


class WorkerError(Exception):
    """A request about a worker that cannot be carried out (one sentence for the user)."""
