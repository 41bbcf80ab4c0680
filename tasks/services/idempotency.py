"""Idempotent API writes: the first request under an ``Idempotency-Key`` runs and its response is stored;
a retry with the same key and the same request gets that response again without running anything."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from tasks.models import IdempotencyRecord
from tasks.services.errors import ServiceError

MAX_KEY_LENGTH = 200


class IdempotencyConflict(ServiceError):
    pass


@dataclass(frozen=True)
class IdempotentOutcome:
    status_code: int
    body: dict[str, Any]
    replayed: bool


def request_fingerprint(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\x00")
    return digest.hexdigest()


def _replay(record: IdempotencyRecord, request_hash: str) -> IdempotentOutcome:
    if record.request_hash != request_hash:
        raise IdempotencyConflict("This Idempotency-Key was already used for a different request; use a new key.")
    return IdempotentOutcome(record.status_code, record.response, replayed=True)


def run_idempotent(
    *,
    user: Any,
    scope: str,
    key: str,
    request_hash: str,
    action: Callable[[], tuple[int, dict[str, Any]]],
) -> IdempotentOutcome:
    """Run ``action`` (returning status and JSON body) once per (user, scope, key).

    The key is claimed in the same transaction as the action's writes: a concurrent retry waits on the
    unique index, then replays the stored response. An action that raises leaves no record behind.
    """
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ServiceError(f"The Idempotency-Key header must be 1 to {MAX_KEY_LENGTH} printable characters.")
    existing = IdempotencyRecord.objects.filter(user=user, scope=scope, key=key).first()
    if existing is not None:
        return _replay(existing, request_hash)
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                user=user,
                scope=scope,
                key=key,
                request_hash=request_hash,
                status_code=0,
                response={},
                created_at=timezone.now(),
            )
            status_code, body = action()
            IdempotencyRecord.objects.filter(pk=record.pk).update(status_code=status_code, response=body)
    except IntegrityError:
        # Another request with this key committed first.
        return _replay(IdempotencyRecord.objects.get(user=user, scope=scope, key=key), request_hash)
    return IdempotentOutcome(status_code, body, replayed=False)
