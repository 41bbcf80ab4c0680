"""Probes for load balancers and orchestrators: ``/healthz`` (liveness) and ``/readyz`` (readiness).

Both answer in ``HealthCheckMiddleware`` (settings ``MIDDLEWARE``, second), before Django checks the Host
header (a probe sends the pod's or the instance's address) and before the HTTPS redirect (probes come over
plain HTTP); they are not URL routes. No login, and no
secrets in the answer: each check says "ok", "skipped" or "failed", never an error text (a broker URL in
an error could carry its password); the reason is logged.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.cache import caches
from django.db import connections
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse

logger = logging.getLogger(__name__)

# Cache backends local to one process: nothing shared to check.
LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)
PROBE_METHODS = ("GET", "HEAD")


def healthz(request: HttpRequest) -> HttpResponse:
    """Liveness: the process answers. Touches no database, cache or broker."""
    if request.method not in PROBE_METHODS:
        return HttpResponseNotAllowed(PROBE_METHODS)
    return HttpResponse("ok", content_type="text/plain")


def _check_database() -> str:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_cache() -> str:
    if settings.CACHES["default"]["BACKEND"] in LOCAL_CACHES:
        return "skipped"
    cache = caches["default"]
    key, value = f"readyz:{uuid.uuid4().hex}", uuid.uuid4().hex
    cache.set(key, value, timeout=10)
    try:
        if cache.get(key) != value:
            raise RuntimeError("the cache did not return the value just written")
    finally:
        cache.delete(key)
    return "ok"


def _check_broker() -> str:
    url = getattr(settings, "CELERY_BROKER_URL", None)
    if not url:
        return "skipped"
    from tasks.tasks import ping_broker

    ping_broker(url, timeout=float(getattr(settings, "READYZ_BROKER_TIMEOUT_SECONDS", 2.0)))
    return "ok"


CHECKS: dict[str, Callable[[], str]] = {"database": _check_database, "cache": _check_cache, "broker": _check_broker}


def readyz(request: HttpRequest) -> HttpResponse:
    """Readiness: the database answers ``SELECT 1``, a shared cache round-trips a value, the broker accepts a
    connection. 200 with each check, or 503 naming the checks that failed."""
    if request.method not in PROBE_METHODS:
        return HttpResponseNotAllowed(PROBE_METHODS)
    checks: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            checks[name] = check()
        except Exception as exc:  # a probe reports any failure; it must not become a 500
            logger.warning("readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
            checks[name] = "failed"
    failed = [name for name, result in checks.items() if result == "failed"]
    if failed:
        body = {
            "status": "unavailable",
            "failed": failed,
            "checks": checks,
            "detail": f"Not ready: {', '.join(failed)} failed.",
        }
        return JsonResponse(body, status=503)
    return JsonResponse({"status": "ok", "checks": checks})


PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": healthz,
    "/healthz/": healthz,
    "/readyz": readyz,
    "/readyz/": readyz,
}


class HealthCheckMiddleware:
    """Answers the probes before the Host check (CommonMiddleware), the HTTPS redirect and the session."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe is not None:
            response = probe(request)
            response["Cache-Control"] = "no-store"
            return response
        return self.get_response(request)
