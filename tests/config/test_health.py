"""/healthz (liveness) and /readyz (readiness): answered for any Host, over plain HTTP, without a login."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from django.test import Client, override_settings

PROD_LIKE = {"ALLOWED_HOSTS": ["label.example.org"], "SECURE_SSL_REDIRECT": True}


def _dead_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@override_settings(**PROD_LIKE)
def test_healthz_answers_ok_for_any_host_over_plain_http_without_the_database() -> None:
    # No django_db mark: touching the database here would raise.
    response = Client().get("/healthz", HTTP_HOST="10.0.3.7:8000")
    assert response.status_code == 200
    assert response.content == b"ok"
    assert response["Content-Type"].startswith("text/plain")
    assert response["X-Request-ID"]


@override_settings(**PROD_LIKE)
def test_other_paths_still_get_the_host_check_and_the_https_redirect(db: Any) -> None:
    assert Client().get("/accounts/login/", HTTP_HOST="10.0.3.7").status_code == 400
    assert Client().get("/accounts/login/", HTTP_HOST="label.example.org").status_code == 301


def test_healthz_refuses_a_post() -> None:
    assert Client().post("/healthz").status_code == 405


@override_settings(**PROD_LIKE)
def test_readyz_reports_each_check_for_any_host(db: Any) -> None:
    response = Client().get("/readyz", HTTP_HOST="10.0.3.7")
    assert response.status_code == 200
    # A check runs when its service is configured: on SQLite a per-process cache and no broker (eager Celery);
    # CI's PostgreSQL run has Redis for both, and they answer.
    from django.conf import settings

    from config.health import LOCAL_CACHES

    cache = "skipped" if settings.CACHES["default"]["BACKEND"] in LOCAL_CACHES else "ok"
    broker = "ok" if settings.CELERY_BROKER_URL else "skipped"
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "cache": cache, "broker": broker}}


def test_readyz_is_503_naming_a_broker_that_does_not_answer(db: Any) -> None:
    port = _dead_port()
    with override_settings(CELERY_BROKER_URL=f"redis://:s3cret@127.0.0.1:{port}/0", READYZ_BROKER_TIMEOUT_SECONDS=1):
        response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["broker"] and body["checks"]["database"] == "ok"
    assert "broker" in body["detail"]
    assert "s3cret" not in response.content.decode() and str(port) not in response.content.decode()


def test_readyz_is_503_naming_a_shared_cache_that_does_not_answer(db: Any) -> None:
    port = _dead_port()
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": f"redis://127.0.0.1:{port}/0"}
    }
    with override_settings(CACHES=caches):
        response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["cache"]


@pytest.mark.skipif(not __import__("shutil").which("redis-server"), reason="needs redis-server")
def test_readyz_checks_a_live_redis_cache_and_broker(db: Any, tmp_path: Any) -> None:
    import subprocess
    import time

    port = _dead_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        url = f"redis://127.0.0.1:{port}/0"
        caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}
        with override_settings(CACHES=caches, CELERY_BROKER_URL=url):
            response = Client().get("/readyz")
        assert response.status_code == 200
        assert response.json()["checks"] == {"database": "ok", "cache": "ok", "broker": "ok"}
    finally:
        server.terminate()
        server.wait(timeout=10)
