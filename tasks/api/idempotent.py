"""The ``Idempotency-Key`` header for API writes a client may retry (publish, bulk import)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from tasks.services.errors import QueueUnavailable, ServiceError
from tasks.services.idempotency import IdempotencyConflict, run_idempotent

HEADER = "Idempotency-Key"


def respond_idempotently(
    request: Request, *, scope: str, fingerprint: str, action: Callable[[], tuple[int, dict[str, Any]]]
) -> Response:
    """Run ``action`` once per key; without the header it simply runs. Replays carry ``Idempotent-Replayed``."""
    key = request.headers.get(HEADER)
    if key is None:
        code, body = action()
        return Response(body, status=code)
    try:
        outcome = run_idempotent(user=request.user, scope=scope, key=key, request_hash=fingerprint, action=action)
    except IdempotencyConflict as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
    except QueueUnavailable:
        raise  # not a bad key: the caller answers 503
    except ServiceError as exc:
        return Response({HEADER: [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
    response = Response(outcome.body, status=outcome.status_code)
    if outcome.replayed:
        response["Idempotent-Replayed"] = "true"
    return response
