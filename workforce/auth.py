"""Authentication backend: failed-login rate limit, and the user's worker identity loaded in one query."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from workforce.ratelimit import login_is_locked


class WorkerAwareBackend(ModelBackend):
    """``ModelBackend`` that refuses logins while a user name + IP is rate-limited, and whose
    per-request user lookup also joins ``user.worker`` (one query, not two).

    Every login form goes through here (the worker login page, the admin's, DRF's session login), so
    one limit covers them all. Failures are counted by the ``user_login_failed`` signal
    (``workforce.signals``); a successful login clears the user's count.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> Any:
        if username is not None and login_is_locked(str(username), request):
            # Django stops trying backends, reports user_login_failed (audited, counted) and shows its form error.
            raise PermissionDenied("Too many failed logins; try again later.")
        return super().authenticate(request, username=username, password=password, **kwargs)

    def get_user(self, user_id: Any) -> Any:
        user_model = get_user_model()
        try:
            user = user_model._default_manager.select_related("worker").get(pk=user_id)
        except user_model.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
