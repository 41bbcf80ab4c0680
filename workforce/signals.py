"""Staff logins and failed logins go to the audit trail (Django reports them only through signals)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from workforce.audit import Actor, record_audit_event


@receiver(user_logged_in, dispatch_uid="workforce.audit_login")
def audit_staff_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user.is_staff:
        record_audit_event(actor=Actor.from_user(user), action="staff.login", object_type="user", object_id=user.pk)


@receiver(user_login_failed, dispatch_uid="workforce.audit_login_failed")
def audit_failed_login(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    username = str(credentials.get("username", ""))[:150]
    record_audit_event(
        actor=Actor.system("authentication"),
        action="login.failed",
        object_type="user",
        object_id=username,
        after={"username": username},
    )
