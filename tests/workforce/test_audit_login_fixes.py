"""A failed login is always audited, and what was typed as the user name stays in the trail only when it is a
user's name: anything else (a password typed into the wrong field) is kept as a keyed digest and a mask."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory
from workforce.audit import CANONICAL_FIELDS, verify_audit_chain
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db


def _fail_login(username: str, url_name: str = "admin:login") -> int:
    response = Client(raise_request_exception=False).post(reverse(url_name), {"username": username, "password": "x"})
    return response.status_code


def _failed_logins() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="login.failed").order_by("id"))


def _whole_event(event: AuditEvent) -> str:
    return json.dumps({name: getattr(event, name) for name in CANONICAL_FIELDS}, default=str)


@pytest.mark.parametrize("length", [65, 100, 150])
def test_a_failed_login_with_a_long_unknown_user_name_is_audited(length: int) -> None:
    assert _fail_login("x" * length) == 200
    [event] = _failed_logins()
    assert len(event.object_id) <= 64
    assert verify_audit_chain() is None


@pytest.mark.parametrize("url_name", ["admin:login", "login"])
def test_a_password_typed_as_the_user_name_is_kept_only_as_a_keyed_digest_and_a_mask(url_name: str) -> None:
    from workforce.signals import login_name_digest

    secret = "S3cret-Passw0rd!"
    _fail_login(secret, url_name)
    _fail_login(secret, url_name)
    first, second = _failed_logins()
    assert secret not in _whole_event(first)
    assert first.after == {"username_digest": login_name_digest(secret), "username_masked": "S… (16 characters)"}
    assert first.object_id == second.object_id == f"unknown:{login_name_digest(secret)[:32]}"  # attempts still join


def test_the_digest_is_keyed_with_the_sites_secret(settings: object) -> None:
    from workforce.signals import login_name_digest

    digest = login_name_digest("guess")
    settings.SECRET_KEY = "another-secret-key-for-tests-only-0123456789"  # type: ignore[attr-defined]
    assert login_name_digest("guess") != digest
    assert len(digest) == 64


def test_a_short_text_is_masked_down_to_its_length() -> None:
    from workforce.signals import masked_login_name

    assert masked_login_name("abc") == "… (3 characters)"
    assert masked_login_name("") == "… (0 characters)"


def test_a_failed_login_as_a_real_user_still_names_the_user() -> None:
    UserFactory(username="boss", is_staff=True)
    _fail_login("boss")
    [event] = _failed_logins()
    assert (event.object_id, event.after) == ("boss", {"username": "boss"})


def test_a_real_user_whose_name_is_longer_than_an_object_id_is_named_by_id() -> None:
    user: Any = UserFactory(username="u" * 120)
    _fail_login("u" * 120)
    [event] = _failed_logins()
    assert (event.object_id, event.after) == (str(user.pk), {"username": "u" * 120})
    assert verify_audit_chain() is None
