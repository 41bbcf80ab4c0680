"""Cache-based rate limits keyed by user and client IP (Redis in production, local memory by default).

A fixed window per key: the first hit creates the counter with the window as its expiry, later hits
increment it atomically (``cache.add`` then ``cache.incr``, both atomic on Redis and on the local-memory
cache). With several Django processes and no Redis, each process counts on its own: set ``REDIS_URL``
in production so the limit holds across them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string


def client_ip(request: HttpRequest | None) -> str:
    """The client's address: the peer Django sees, or behind a reverse proxy the address the proxy puts
    in ``RATELIMIT_IP_HEADER`` (e.g. ``HTTP_X_FORWARDED_FOR``: its right-most entry, the one our proxy
    appended; entries further left come from the client and could be forged).

    Without that setting behind a proxy, every client shares the proxy's address, and the per-address
    limit would then lock out everyone after a burst of failures from anyone.
    """
    if request is None:
        return ""
    header = settings.RATELIMIT_IP_HEADER
    forwarded = str(request.META.get(header, "")) if header else ""
    if forwarded:
        return forwarded.rsplit(",", 1)[-1].strip()
    return str(request.META.get("REMOTE_ADDR", ""))


def _key(scope: str, *parts: str) -> str:
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]  # no raw user names in cache keys
    return f"ratelimit:{scope}:{digest}"


def count(scope: str, *parts: str) -> int:
    """How many hits the key has in its current window."""
    return int(cache.get(_key(scope, *parts), 0))


def hit(scope: str, *parts: str, window: int) -> int:
    """Count one hit; return the key's count in the current window (this hit included)."""
    key = _key(scope, *parts)
    if cache.add(key, 1, timeout=window):
        return 1
    try:
        return int(cache.incr(key))
    except ValueError:  # the window expired between add and incr
        cache.add(key, 1, timeout=window)
        return 1


def reset(scope: str, *parts: str) -> None:
    cache.delete(_key(scope, *parts))


def login_is_locked(username: str, request: HttpRequest | None) -> bool:
    """Too many failed logins for this user name from this address, or from this address at all."""
    limit, ip = settings.LOGIN_MAX_FAILURES, client_ip(request)
    return count("login", username.lower(), ip) >= limit or count("login-ip", ip) >= limit * 10


def record_login_failure(username: str, request: HttpRequest | None) -> None:
    window, ip = settings.LOGIN_LOCKOUT_SECONDS, client_ip(request)
    hit("login", username.lower(), ip, window=window)
    hit("login-ip", ip, window=window)


def record_login_success(username: str, request: HttpRequest | None) -> None:
    reset("login", username.lower(), client_ip(request))


def rate_limited(
    scope: str, *, limit_setting: str, window_setting: str, methods: tuple[str, ...] | None = None
) -> Callable[..., Any]:
    """View decorator: at most ``settings.<limit_setting>`` requests per user and IP per window (else 429);
    with ``methods``, only requests with those methods count and are limited."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if methods is not None and request.method not in methods:
                return view(request, *args, **kwargs)
            user = str(request.user.pk) if request.user.is_authenticated else ""
            limit, window = getattr(settings, limit_setting), getattr(settings, window_setting)
            if hit(scope, user, client_ip(request), window=window) > limit:
                message = "Too many attempts in a short time. Wait a few minutes and try again."
                body = render_to_string("forbidden.html", {"message": message}, request)
                return HttpResponse(body, status=429, headers={"Retry-After": str(window)})
            return view(request, *args, **kwargs)

        return wrapper

    return decorate
