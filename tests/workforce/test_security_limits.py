"""Login and qualification rate limits, staff password rules, API page size cap."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client, override_settings
from django.urls import reverse

from tests.factories import UserFactory
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests"


def _login(url: str, username: str, password: str, ip: str = "10.0.0.1") -> Any:
    return Client(REMOTE_ADDR=ip).post(url, {"username": username, "password": password})


@pytest.mark.parametrize("url_name", ["login", "admin:login"])
@override_settings(LOGIN_MAX_FAILURES=3)
def test_logins_lock_after_repeated_failures_for_that_user_and_address(url_name: str) -> None:
    UserFactory(username="ops", is_staff=True)
    url = reverse(url_name)
    assert _login(url, "ops", PASSWORD).status_code == 302  # works, and clears nothing that matters
    for _ in range(3):
        assert _login(url, "ops", "wrong").status_code == 200
    locked = _login(url, "ops", PASSWORD)
    assert locked.status_code == 200 and not locked.wsgi_request.user.is_authenticated
    assert _login(url, "ops", PASSWORD, ip="10.0.0.2").status_code == 302  # another address is not locked
    reasons = list(AuditEvent.objects.filter(action="login.failed").values_list("reason", flat=True))
    assert reasons == ["", "", "", "rate limited: too many failed logins"]


@override_settings(LOGIN_MAX_FAILURES=3)
def test_a_successful_login_clears_the_count() -> None:
    UserFactory(username="w1")
    url = reverse("login")
    for _ in range(2):
        _login(url, "w1", "wrong")
    assert _login(url, "w1", PASSWORD).status_code == 302
    for _ in range(2):
        _login(url, "w1", "wrong")
    assert _login(url, "w1", PASSWORD).status_code == 302


@override_settings(LOGIN_MAX_FAILURES=2)
def test_one_address_trying_many_user_names_is_locked_too() -> None:
    UserFactory(username="victim")
    url = reverse("login")
    for i in range(20):  # ten times the per-user limit, spread over user names
        _login(url, f"guess{i}", "wrong")
    assert _login(url, "victim", PASSWORD).status_code == 200
    assert _login(url, "victim", PASSWORD, ip="10.9.9.9").status_code == 302


@override_settings(QUALIFICATION_RATE_LIMIT=2, QUALIFICATION_RATE_WINDOW_SECONDS=60)
def test_qualification_attempts_are_rate_limited_per_worker(make_worker: Any) -> None:
    from qualification.services import create_test
    from tests.qualification.conftest import OPS, sentiment_questions

    test = create_test(actor=OPS, name="Basics", questions=sentiment_questions(), labels=["pos", "neg"], max_attempts=9)
    worker, other = make_worker(), make_worker()
    client = Client()
    client.force_login(worker.user)
    url = reverse("qualification:start", args=[test.pk])
    assert [client.post(url).status_code for _ in range(3)] == [302, 302, 429]
    refused = client.post(url)
    assert refused.status_code == 429 and refused["Retry-After"] == "60"
    assert b"Too many attempts" in refused.content
    other_client = Client()
    other_client.force_login(other.user)
    assert other_client.post(url).status_code == 302


@pytest.mark.parametrize(
    ("password", "ok"),
    [
        ("Tr0ub4dor&3x!", True),
        ("correcthorsebatterystaple", False),
        ("Short1!", False),
        ("ALLUPPERCASE123!", True),
        ("ALLUPPERCASE123", False),
    ],
)
def test_staff_passwords_must_be_long_and_mixed(password: str, ok: bool) -> None:
    staff = UserFactory(username="someone", is_staff=True)
    worker = UserFactory(username="crowd-someone")
    validate_password("correcthorsebatterystaple", worker)  # crowd workers keep the ordinary rules
    if ok:
        validate_password(password, staff)
    else:
        with pytest.raises(ValidationError, match="Staff passwords"):
            validate_password(password, staff)


def test_api_pages_are_capped() -> None:
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from tasks.api.pagination import BoundedCursorPagination

    paginator = BoundedCursorPagination()
    assert paginator.get_page_size(Request(APIRequestFactory().get("/", {"page_size": "100000"}))) == 500
    assert paginator.get_page_size(Request(APIRequestFactory().get("/"))) == 100


@override_settings(LOGIN_MAX_FAILURES=2, RATELIMIT_IP_HEADER="HTTP_X_FORWARDED_FOR")
def test_behind_a_proxy_the_address_it_appends_is_the_one_limited() -> None:
    UserFactory(username="w2")
    url = reverse("login")

    def login(password: str, forwarded: str) -> int:
        client = Client(REMOTE_ADDR="10.0.0.254", HTTP_X_FORWARDED_FOR=forwarded)
        return client.post(url, {"username": "w2", "password": password}).status_code

    for spoofed in ("1.1.1.1, 203.0.113.7", "2.2.2.2, 203.0.113.7"):  # forged left part, same real client
        assert login("wrong", spoofed) == 200
    assert login(PASSWORD, "203.0.113.7") == 200  # locked for that client
    assert login(PASSWORD, "198.51.100.9") == 302  # other clients behind the same proxy are not
