"""Staff logins and failed logins go to the audit trail (Django reports them only through signals);
failed logins also count towards the login rate limit (``workforce.ratelimit``)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from workforce.audit import Actor, record_audit_event
from workforce.ratelimit import login_is_locked, record_login_failure, record_login_success


@receiver(user_logged_in, dispatch_uid="workforce.audit_login")
def audit_staff_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    record_login_success(user.get_username(), request)
    if user.is_staff:
        record_audit_event(actor=Actor.from_user(user), action="staff.login", object_type="user", object_id=user.pk)


@receiver(user_login_failed, dispatch_uid="workforce.audit_login_failed")
def audit_failed_login(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    username = str(credentials.get("username", ""))[:150]
    locked = login_is_locked(username, request)
    record_login_failure(username, request)
    record_audit_event(
        actor=Actor.system("authentication"),
        action="login.failed",
        object_type="user",
        object_id=username,
        after={"username": username},
        reason="rate limited: too many failed logins" if locked else "",
    )
