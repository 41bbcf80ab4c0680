"""Logging out and the credential commands are audited: a staff user's logout (admin or /accounts/logout/) like
their login; ``changepassword`` and ``createsuperuser`` name the command and the OS user running it, and say
that a password changed or a user was created (with what they may do), never the password or its hash."""

from __future__ import annotations

import getpass
import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command, get_commands
from django.test import Client
from django.urls import reverse

from tests.factories import UserFactory
from workforce.audit import CANONICAL_FIELDS, verify_audit_chain
from workforce.management.commands.changepassword import Command as ChangePasswordCommand
from workforce.management.commands.createsuperuser import Command as CreateSuperuserCommand
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
OLD = "pw-for-tests"  # the factory's password
# ``manage.py changepassword`` runs the project's command because workforce comes before django.contrib.auth in
# INSTALLED_APPS (Django lets the earlier app win a command name): the tests below run the commands by name.
NEW = "Another-Long-Passw0rd!"


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def _whole_event(event: AuditEvent) -> str:
    return json.dumps({name: getattr(event, name) for name in CANONICAL_FIELDS}, default=str)


def _logged_in(user: Any) -> Client:
    client = Client()
    assert client.login(username=user.get_username(), password=OLD)
    return client


# --- logout ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("url_name", ["logout", "admin:logout"])
def test_a_staff_users_logout_is_audited_like_their_login(url_name: str) -> None:
    staff = UserFactory(username="leaving", is_staff=True)
    client = _logged_in(staff)
    session_key = client.session.session_key
    response = client.post(reverse(url_name))
    assert response.status_code in (200, 302)
    [login] = _events("staff.login")
    [event] = _events("staff.logout")
    assert (event.actor_kind, event.actor_id, event.actor_label) == (
        login.actor_kind,
        login.actor_id,
        login.actor_label,
    )
    assert (event.actor_kind, event.actor_id, event.actor_label) == ("user", str(staff.pk), "leaving")
    assert (event.object_type, event.object_id) == ("user", str(staff.pk))
    assert session_key and session_key not in _whole_event(event)
    assert verify_audit_chain() is None


def test_a_crowd_workers_logout_is_not_audited_as_their_login_is_not() -> None:
    client = _logged_in(UserFactory(username="crowd"))
    client.post(reverse("logout"))
    assert not _events("staff.login") and not _events("staff.logout")


def test_a_logout_without_a_user_an_expired_session_writes_nothing() -> None:
    before = AuditEvent.objects.count()
    Client().post(reverse("logout"))
    Client().post(reverse("admin:logout"))
    assert AuditEvent.objects.count() == before


# --- changepassword -------------------------------------------------------------------------------------------


def _typed(monkeypatch: pytest.MonkeyPatch, *answers: str) -> None:
    """What the operator types at getpass's prompts, in order."""
    queue = list(answers)
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": queue.pop(0))


def test_the_project_commands_replace_djangos_credential_commands() -> None:
    commands = get_commands()
    assert commands["changepassword"] == "workforce"
    assert commands["createsuperuser"] == "workforce"


def test_the_commands_keep_djangos_options() -> None:
    from django.contrib.auth.management.commands import changepassword, createsuperuser

    for ours, theirs in (
        (ChangePasswordCommand(), changepassword.Command()),
        (CreateSuperuserCommand(), createsuperuser.Command()),
    ):
        assert isinstance(ours, type(theirs))
        ours_options = {a.dest for a in ours.create_parser("manage.py", "x")._actions}
        theirs_options = {a.dest for a in theirs.create_parser("manage.py", "x")._actions}
        assert ours_options == theirs_options


def test_changepassword_records_that_the_password_changed_by_the_command_and_os_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    staff = UserFactory(username="ops", is_staff=True)
    old_hash = staff.password
    _typed(monkeypatch, NEW, NEW)
    call_command(ChangePasswordCommand(), "ops", stdout=_Sink())
    staff.refresh_from_db()
    assert staff.check_password(NEW)
    [event] = _events("user.password_changed")
    assert event.actor_kind == "system" and event.actor_id == ""
    assert "changepassword" in event.actor_label and getpass.getuser() in event.actor_label
    assert (event.object_type, event.object_id) == ("user", str(staff.pk))
    assert event.before == {"usable_password": True}
    assert event.after == {"usable_password": True, "password_changed": True}
    written = _whole_event(event)
    assert NEW not in written and OLD not in written and old_hash not in written and staff.password not in written
    assert verify_audit_chain() is None


def test_changepassword_that_gives_up_writes_no_event(monkeypatch: pytest.MonkeyPatch) -> None:
    staff = UserFactory(username="ops", is_staff=True)
    _typed(monkeypatch, NEW, "other1", NEW, "other2", NEW, "other3")
    with pytest.raises(CommandError, match="after 3 attempts"):
        call_command(ChangePasswordCommand(), "ops", stdout=_Sink())
    staff.refresh_from_db()
    assert staff.check_password(OLD)
    assert not _events("user.password_changed")


def test_changepassword_for_an_unknown_user_fails_as_before_and_writes_nothing() -> None:
    with pytest.raises(CommandError, match="user 'nobody' does not exist"):
        call_command(ChangePasswordCommand(), "nobody", stdout=_Sink())
    assert not AuditEvent.objects.exists()


# --- createsuperuser ------------------------------------------------------------------------------------------


class _Sink:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


class _TTY:
    def isatty(self) -> bool:
        return True


def _created(username: str) -> tuple[Any, AuditEvent]:
    user = get_user_model()._default_manager.get(username=username)
    [event] = [e for e in _events("user.created") if e.object_id == str(user.pk)]
    return user, event


def test_createsuperuser_without_input_and_a_password_from_the_environment_is_audited(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", NEW)
    call_command(CreateSuperuserCommand(), "--noinput", "--username=root", "--email=root@example.com", stdout=_Sink())
    user, event = _created("root")
    assert user.check_password(NEW)
    assert event.actor_kind == "system" and event.actor_id == ""
    assert "createsuperuser" in event.actor_label and getpass.getuser() in event.actor_label
    assert event.object_type == "user"
    assert event.after["is_staff"] is True and event.after["is_superuser"] is True
    assert event.after["usable_password"] is True
    written = _whole_event(event)
    assert NEW not in written and user.password not in written and "root@example.com" not in written
    assert verify_audit_chain() is None


def test_createsuperuser_without_input_or_password_is_audited_with_an_unusable_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    call_command(CreateSuperuserCommand(), "--noinput", "--username=root", "--email=", stdout=_Sink())
    _user, event = _created("root")
    assert event.after["is_superuser"] is True and event.after["usable_password"] is False


def test_createsuperuser_at_a_terminal_is_audited(monkeypatch: pytest.MonkeyPatch) -> None:
    typed = iter(["admin2", "admin2@example.com"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(typed))
    _typed(monkeypatch, NEW, NEW)
    call_command(CreateSuperuserCommand(), stdin=_TTY(), stdout=_Sink(), stderr=_Sink())
    user, event = _created("admin2")
    assert user.is_superuser and user.check_password(NEW)
    assert event.after["is_superuser"] is True and event.after["usable_password"] is True
    assert NEW not in _whole_event(event)


def test_createsuperuser_that_is_refused_writes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    UserFactory(username="taken")
    before = AuditEvent.objects.count()
    with pytest.raises(CommandError, match="already taken"):
        call_command(CreateSuperuserCommand(), "--noinput", "--username=taken", "--email=", stdout=_Sink())
    assert AuditEvent.objects.count() == before


def test_createsuperuser_by_name_runs_the_audited_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """``manage.py createsuperuser`` (not only the class) is audited: the project's command wins the name."""
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", NEW)
    call_command("createsuperuser", "--noinput", "--username=root", "--email=", stdout=_Sink())
    _created("root")
