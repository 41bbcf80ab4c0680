"""A staff user changing their own password on the admin's "Change password" page is audited like a change
in the user admin: who and when, that it changed, never the password or its hash. The admin's login is audited
too (its logout is not: see the report)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory
from workforce.audit import verify_audit_chain
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
OLD = "pw-for-tests"  # the factory's password
NEW = "Another-Long-Passw0rd!"


@pytest.fixture
def staff() -> Any:
    return UserFactory(username="self-service", is_staff=True)


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _password_events(user: Any) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(action="user.password_changed", object_type="user", object_id=str(user.pk)).order_by(
            "id"
        )
    )


def _written(event: AuditEvent) -> str:
    return json.dumps([event.before, event.after, event.reason, event.object_id, event.actor_label])


def test_the_admin_password_change_page_is_where_the_admin_links_to() -> None:
    assert reverse("admin:password_change") == "/admin/password_change/"


def test_changing_ones_own_password_in_the_admin_records_who_and_that_it_changed(staff: Any) -> None:
    client = _client(staff)
    assert client.get(reverse("admin:password_change")).status_code == 200
    old_hash = staff.password
    response = client.post(
        reverse("admin:password_change"), {"old_password": OLD, "new_password1": NEW, "new_password2": NEW}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:password_change_done")
    staff.refresh_from_db()
    assert staff.check_password(NEW)
    [event] = _password_events(staff)
    assert (event.actor_kind, event.actor_id, event.actor_label) == ("user", str(staff.pk), "self-service")
    assert event.before == {"usable_password": True}
    assert event.after == {"usable_password": True, "password_changed": True}
    written = _written(event)
    assert NEW not in written and OLD not in written and old_hash not in written and staff.password not in written
    assert verify_audit_chain() is None
    # still logged in: the session follows the new password
    assert client.get(reverse("admin:password_change_done")).status_code == 200


def test_a_refused_change_of_ones_own_password_writes_no_event(staff: Any) -> None:
    response = _client(staff).post(
        reverse("admin:password_change"), {"old_password": "wrong", "new_password1": NEW, "new_password2": NEW}
    )
    assert response.status_code == 200
    staff.refresh_from_db()
    assert staff.check_password(OLD)
    assert not _password_events(staff)


def test_the_password_change_page_is_for_staff_only() -> None:
    user = UserFactory(username="not-staff")
    response = _client(user).post(
        reverse("admin:password_change"), {"old_password": OLD, "new_password1": NEW, "new_password2": NEW}
    )
    assert response.status_code == 302 and reverse("admin:login") in response["Location"]
    user.refresh_from_db()
    assert user.check_password(OLD)
    assert not _password_events(user)


def test_a_staff_login_on_the_admin_is_audited(staff: Any) -> None:
    response = Client().post(reverse("admin:login"), {"username": "self-service", "password": OLD})
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="staff.login", object_id=str(staff.pk)).count() == 1
