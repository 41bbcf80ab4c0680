"""Staff logins, staff logouts and failed logins go to the audit trail (Django reports them only through
signals); failed logins also count towards the login rate limit (``workforce.ratelimit``).

A logout is audited like the login: a staff user's ``staff.logout``, by that user, naming nothing else (no
session key). A logout without a user (the session had already expired, or nobody was logged in) changes
nothing and writes nothing; nor does a crowd worker's, whose logins are not audited either.

A failed login names the user when the name typed is a user's; otherwise the text typed (often a password
typed into the wrong field, and sealed events are never rewritten) is kept only as a keyed digest and a
masked form: ``login_name_digest`` of a suspected name finds its events, the text itself cannot be read back.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from workforce.audit import Actor, record_audit_event
from workforce.models import AuditEvent
from workforce.ratelimit import login_is_locked, record_login_failure, record_login_success

OBJECT_ID_LENGTH = AuditEvent._meta.get_field("object_id").max_length or 64


def login_name_digest(name: str) -> str:
    """A keyed digest (HMAC-SHA256 with the site's secret key) of a user name that matches no user."""
    return hmac.new(settings.SECRET_KEY.encode(), b"login name\0" + name.encode(), hashlib.sha256).hexdigest()


def masked_login_name(name: str) -> str:
    """Its first character and its length only: ``S… (16 characters)``."""
    if len(name) < 6:  # a short text's first character is too much of it
        return f"… ({len(name)} characters)"
    return f"{name[0]}… ({len(name)} characters)"


def _failed_login_subject(username: str) -> tuple[str, dict[str, Any]]:
    """The event's object id and payload for a failed login as ``username``."""
    user_model = get_user_model()
    lookup = {user_model.USERNAME_FIELD: username}
    user = user_model._default_manager.filter(**lookup).first() if username and "\0" not in username else None
    if user is not None:
        # A user's own name is no secret; a name longer than object_id takes names the user by id.
        object_id = username if len(username) <= OBJECT_ID_LENGTH else str(user.pk)
        return object_id, {"username": username}
    digest = login_name_digest(username)
    return f"unknown:{digest[:32]}", {"username_digest": digest, "username_masked": masked_login_name(username)}


@receiver(user_logged_in, dispatch_uid="workforce.audit_login")
def audit_staff_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    record_login_success(user.get_username(), request)
    if user.is_staff:
        record_audit_event(actor=Actor.from_user(user), action="staff.login", object_type="user", object_id=user.pk)


@receiver(user_logged_out, dispatch_uid="workforce.audit_logout")
def audit_staff_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None and user.is_staff:
        record_audit_event(actor=Actor.from_user(user), action="staff.logout", object_type="user", object_id=user.pk)


@receiver(user_login_failed, dispatch_uid="workforce.audit_login_failed")
def audit_failed_login(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
    username = str(credentials.get("username", ""))[:150]
    locked = login_is_locked(username, request)
    record_login_failure(username, request)
    object_id, after = _failed_login_subject(username)
    record_audit_event(
        actor=Actor.system("authentication"),
        action="login.failed",
        object_type="user",
        object_id=object_id,
        after=after,
        reason="rate limited: too many failed logins" if locked else "",
    )
