"""The audit trail: ``record_audit_event`` appends one hash-chained event.

``hash = sha256(previous_hash + canonical_json(event))``; the chain head row is locked while appending,
so events form one total order and any later edit of a stored event breaks every hash after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from workforce.models import AuditChainHead, AuditEvent, Worker
from workforce.request_context import current_request_id


@dataclass(frozen=True)
class Actor:
    """Who did something: a staff user, a worker, or a named system process or policy."""

    kind: str
    id: str
    label: str

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(kind=AuditEvent.ActorKind.SYSTEM, id="", label=name)

    @classmethod
    def from_user(cls, user: Any) -> Actor:
        return cls(kind=AuditEvent.ActorKind.USER, id=str(user.pk), label=user.get_username())

    @classmethod
    def from_worker(cls, worker: Worker) -> Actor:
        return cls(kind=AuditEvent.ActorKind.WORKER, id=str(worker.pk), label=str(worker))


CANONICAL_FIELDS = (
    "created_at",
    "actor_kind",
    "actor_id",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "reason",
    "request_id",
)


def canonical_event(fields: Mapping[str, Any]) -> str:
    """The event as canonical JSON: sorted keys, no whitespace, aware timestamp in ISO format."""
    payload = {name: fields[name] for name in CANONICAL_FIELDS}
    payload["created_at"] = fields["created_at"].isoformat()
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def chain_hash(previous_hash: str, canonical: str) -> str:
    return hashlib.sha256((previous_hash + canonical).encode()).hexdigest()


def record_audit_event(
    *,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: object,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
    request_id: str = "",
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction."""
    request_id = request_id or current_request_id.get()
    before = json.loads(json.dumps(before or {}, default=str))
    after = json.loads(json.dumps(after or {}, default=str))
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(id=1)
        created_at = timezone.now()
        fields: dict[str, Any] = {
            "created_at": created_at,
            "actor_kind": str(actor.kind),
            "actor_id": actor.id,
            "actor_label": actor.label,
            "action": action,
            "object_type": object_type,
            "object_id": str(object_id),
            "before": before,
            "after": after,
            "reason": reason,
            "request_id": request_id,
        }
        digest = chain_hash(head.last_hash, canonical_event(fields))
        event = AuditEvent.objects.create(previous_hash=head.last_hash, hash=digest, **fields)
        AuditChainHead.objects.filter(id=1).update(last_hash=digest, count=head.count + 1)
    return event


def verify_audit_chain() -> AuditEvent | None:
    """Walk the chain in order; return the first event whose hash does not match, or None."""
    previous = "0" * 64
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        expected = chain_hash(previous, canonical_event({name: getattr(event, name) for name in CANONICAL_FIELDS}))
        if event.previous_hash != previous or event.hash != expected:
            return event
        previous = event.hash
    return None
