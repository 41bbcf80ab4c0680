"""Log lines carry the id of the request they were written in, the one the response sends in X-Request-ID."""

from __future__ import annotations

import io
import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client, override_settings

from workforce.request_logging import RequestIdFilter

REQUEST_ID = "audit-0123456789abcdef"


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """What the configured console handler (settings LOGGING) writes, through its own filter and format."""
    handlers = [h for h in logging.getLogger().handlers if any(isinstance(f, RequestIdFilter) for f in h.filters)]
    assert len(handlers) == 1, "the console handler should stamp records with the request id"
    handler = handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    out = io.StringIO()
    previous = handler.setStream(out)
    try:
        yield out
    finally:
        handler.setStream(previous)


def test_a_response_logged_by_django_carries_the_request_id(console: io.StringIO, admin_client: Client) -> None:
    response = admin_client.get("/api/jobs/987654/", HTTP_X_REQUEST_ID=REQUEST_ID, secure=True)
    assert response.status_code == 404 and response["X-Request-ID"] == REQUEST_ID
    lines = [line for line in console.getvalue().splitlines() if "Not Found: /api/jobs/987654/" in line]
    assert len(lines) == 1  # logged once, inside the request
    assert f"[{REQUEST_ID}] django.request" in lines[0]


def test_a_line_the_app_logs_during_a_request_carries_the_id_the_response_sends(console: io.StringIO, db: Any) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
    with override_settings(CELERY_BROKER_URL=dead, READYZ_BROKER_TIMEOUT_SECONDS=1):
        response = Client().get("/readyz")  # no X-Request-ID sent: one is made up and sent back
    assert response.status_code == 503
    request_id = response["X-Request-ID"]
    lines = [line for line in console.getvalue().splitlines() if "readiness check broker failed" in line]
    assert lines and all(f"[{request_id}] config.health" in line for line in lines)


def test_a_line_logged_outside_a_request_has_a_dash(console: io.StringIO) -> None:
    logging.getLogger("tasks.tasks").warning("between requests")
    assert "WARNING [-] tasks.tasks between requests" in console.getvalue()
