"""Who may do what is audited: users (flags, roles, permissions, password), roles and API tokens changed in the
admin, and workers edited there, each with actor, before and after, and never a secret."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from tests.factories import UserFactory, WorkerFactory
from workforce.models import AuditEvent, Worker

pytestmark = pytest.mark.django_db
User = get_user_model()


def _written(event: AuditEvent) -> str:
    return json.dumps([event.before, event.after, event.reason, event.object_id])


def _user_form(client: Client, user: Any, **changes: Any) -> dict[str, Any]:
    """The user's change page posted back, with ``changes``."""
    form = client.get(reverse("admin:auth_user_change", args=[user.pk])).context["adminform"].form
    data = {name: form[name].value() for name in form.fields if name not in ("password", "last_login", "date_joined")}
    joined = {"date_joined_0": user.date_joined.strftime("%Y-%m-%d"), "date_joined_1": "00:00:00"}
    data |= joined | {f"initial-{name}": value for name, value in joined.items()}  # as the page's hidden inputs
    data |= changes
    return {key: value for key, value in data.items() if value not in (None, False)}


def _post_user(client: Client, user: Any, **changes: Any) -> None:
    response = client.post(reverse("admin:auth_user_change", args=[user.pk]), _user_form(client, user, **changes))
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response


def _user_events(user: Any, action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(object_type="user", object_id=str(user.pk), action=action).order_by("id"))


def test_making_a_user_staff_and_superuser_records_who_and_before_and_after(
    admin_client: Client, admin_user: Any
) -> None:
    user: Any = UserFactory(username="plain")
    _post_user(admin_client, user, is_staff="on", is_superuser="on")
    [event] = _user_events(user, "user.changed")
    who = (event.actor_kind, event.actor_id, event.actor_label)
    assert who == ("user", str(admin_user.pk), admin_user.get_username())
    assert (event.before["is_staff"], event.before["is_superuser"]) == (False, False)
    assert (event.after["is_staff"], event.after["is_superuser"]) == (True, True)
    assert user.password not in _written(event)  # never the hash


def test_a_users_roles_and_permissions_are_recorded_as_sorted_names_and_codenames(admin_client: Client) -> None:
    user: Any = UserFactory(username="plain", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_job"))
    roles = [Group.objects.create(name="Zeta role"), Group.objects.create(name="Alpha role")]
    perms = Permission.objects.filter(codename__in=["change_job", "add_item"])
    _post_user(admin_client, user, groups=[g.pk for g in roles], user_permissions=[p.pk for p in perms])
    [event] = _user_events(user, "user.changed")
    assert (event.before["groups"], event.after["groups"]) == ([], ["Alpha role", "Zeta role"])
    assert event.before["permissions"] == ["tasks.view_job"]
    assert event.after["permissions"] == ["tasks.add_item", "tasks.change_job"]


def test_deactivating_a_user_is_recorded_and_other_fields_only_by_name(admin_client: Client) -> None:
    user: Any = UserFactory(username="leaver", is_staff=True, email="leaver@example.com")
    form = _user_form(admin_client, user, email="private@example.com")
    form.pop("is_active")
    response = admin_client.post(reverse("admin:auth_user_change", args=[user.pk]), form)
    assert response.status_code == 302
    [event] = _user_events(user, "user.changed")
    assert (event.before["is_active"], event.after["is_active"]) == (True, False)
    assert "email" in event.after["changed_fields"]
    assert "private@example.com" not in _written(event) and "leaver@example.com" not in _written(event)


def test_saving_a_user_without_changes_writes_no_event(admin_client: Client) -> None:
    user: Any = UserFactory(username="same", is_staff=True)
    user.date_joined = user.date_joined.replace(hour=0, minute=0, second=0, microsecond=0)
    user.save()
    _post_user(admin_client, user)
    assert not _user_events(user, "user.changed")


def test_adding_a_user_is_recorded_without_the_password(admin_client: Client) -> None:
    password = "Correct-Horse-Battery-9"
    response = admin_client.post(
        reverse("admin:auth_user_add"),
        {"username": "newcomer", "usable_password": "true", "password1": password, "password2": password},
    )
    assert response.status_code == 302
    user = User.objects.get(username="newcomer")
    [event] = _user_events(user, "user.created")
    assert event.after["is_superuser"] is False and event.after["usable_password"] is True
    assert password not in _written(event) and user.password not in _written(event)


def test_changing_a_password_in_the_admin_records_that_it_changed_not_the_value(admin_client: Client) -> None:
    user: Any = UserFactory(username="forgetful")
    old_hash = user.password
    password = "Another-Long-Passw0rd!"
    response = admin_client.post(
        reverse("admin:auth_user_password_change", args=[user.pk]),
        {"password1": password, "password2": password, "set_usable_password": "true"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(password)
    [event] = _user_events(user, "user.password_changed")
    assert event.after == {"usable_password": True, "password_changed": True}
    written = _written(event)
    assert password not in written and old_hash not in written and user.password not in written


def test_a_refused_password_change_writes_no_event(admin_client: Client) -> None:
    user: Any = UserFactory(username="forgetful")
    response = admin_client.post(
        reverse("admin:auth_user_password_change", args=[user.pk]), {"password1": "a", "password2": "b"}
    )
    assert response.status_code == 200
    assert not _user_events(user, "user.password_changed")


def test_deleting_users_records_what_each_could_do(admin_client: Client) -> None:
    one: Any = UserFactory(username="one", is_staff=True)
    two: Any = UserFactory(username="two")
    Token.objects.create(user=one)
    assert admin_client.post(reverse("admin:auth_user_delete", args=[one.pk]), {"post": "yes"}).status_code == 302
    admin_client.post(
        reverse("admin:auth_user_changelist"),
        {"action": "delete_selected", "_selected_action": [two.pk], "post": "yes"},
    )
    assert not User.objects.filter(pk__in=[one.pk, two.pk]).exists()
    [first] = _user_events(one, "user.deleted")
    [second] = _user_events(two, "user.deleted")
    assert (first.before["is_staff"], first.before["api_token"]) == (True, True)
    assert (second.before["is_staff"], second.before["api_token"]) == (False, False)


def test_changing_a_roles_permissions_records_before_and_after(admin_client: Client, admin_user: Any) -> None:
    group = Group.objects.create(name="Labellers")
    group.permissions.add(Permission.objects.get(codename="view_job"))
    change_job = Permission.objects.get(codename="change_job")
    url = reverse("admin:auth_group_change", args=[group.pk])
    assert admin_client.post(url, {"name": "Labellers", "permissions": [change_job.pk]}).status_code == 302
    [event] = AuditEvent.objects.filter(action="group.changed", object_id=str(group.pk))
    assert (event.object_type, event.actor_id) == ("group", str(admin_user.pk))
    assert event.before == {"name": "Labellers", "permissions": ["tasks.view_job"]}
    assert event.after == {"name": "Labellers", "permissions": ["tasks.change_job"]}


def test_adding_and_deleting_a_role_are_recorded(admin_client: Client) -> None:
    view_job = Permission.objects.get(codename="view_job")
    assert (
        admin_client.post(reverse("admin:auth_group_add"), {"name": "Temp", "permissions": [view_job.pk]}).status_code
        == 302
    )
    group = Group.objects.get(name="Temp")
    member: Any = UserFactory(username="member")
    member.groups.add(group)
    assert admin_client.post(reverse("admin:auth_group_delete", args=[group.pk]), {"post": "yes"}).status_code == 302
    created = AuditEvent.objects.get(action="group.created", object_id=str(group.pk))
    deleted = AuditEvent.objects.get(action="group.deleted", object_id=str(group.pk))
    assert created.after == {"name": "Temp", "permissions": ["tasks.view_job"]}
    assert deleted.before == {"name": "Temp", "permissions": ["tasks.view_job"], "members": [member.pk]}


def test_creating_and_deleting_an_api_token_are_recorded_without_the_key(admin_client: Client, admin_user: Any) -> None:
    user: Any = UserFactory(username="api-user", is_staff=True)
    assert admin_client.post(reverse("admin:authtoken_tokenproxy_add"), {"user": user.pk}).status_code == 302
    key = Token.objects.get(user=user).key
    [created] = _user_events(user, "api_token.created")
    assert (created.actor_id, created.after) == (str(admin_user.pk), {"user": user.pk, "api_token": True})
    delete_url = reverse("admin:authtoken_tokenproxy_delete", args=[user.pk])
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 302
    assert not Token.objects.filter(user=user).exists()
    [deleted] = _user_events(user, "api_token.deleted")
    assert deleted.before == {"user": user.pk, "api_token": True}
    assert all(key not in _written(e) for e in AuditEvent.objects.all())


def test_moving_a_token_to_another_user_is_recorded(admin_client: Client) -> None:
    first: Any = UserFactory(username="first")
    second: Any = UserFactory(username="second")
    Token.objects.create(user=first)
    url = reverse("admin:authtoken_tokenproxy_change", args=[first.pk])
    assert admin_client.post(url, {"user": second.pk}).status_code == 302
    [event] = _user_events(second, "api_token.reassigned")
    assert (event.before, event.after) == ({"user": first.pk}, {"user": second.pk, "api_token": True})


def test_editing_a_workers_display_name_is_recorded_as_a_keyed_hash(admin_client: Client, admin_user: Any) -> None:
    worker: Any = WorkerFactory(display_name="Alice")
    url = reverse("admin:workforce_worker_change", args=[worker.pk])
    assert admin_client.post(url, {"display_name": "Mallory"}).status_code == 302
    assert Worker.objects.get(pk=worker.pk).display_name == "Mallory"
    [event] = AuditEvent.objects.filter(object_type="worker", object_id=str(worker.pk), action="worker.edited")
    assert (event.actor_kind, event.actor_id) == ("user", str(admin_user.pk))
    assert event.before["display_name"] != event.after["display_name"]
    assert "Alice" not in _written(event) and "Mallory" not in _written(event)  # names outlive erasure otherwise


def test_saving_a_worker_unchanged_writes_no_event(admin_client: Client) -> None:
    worker: Any = WorkerFactory(display_name="Alice")
    url = reverse("admin:workforce_worker_change", args=[worker.pk])
    assert admin_client.post(url, {"display_name": "Alice"}).status_code == 302
    assert not AuditEvent.objects.filter(object_type="worker", object_id=str(worker.pk)).exists()
