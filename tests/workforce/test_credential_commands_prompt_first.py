"""``changepassword`` and ``createsuperuser`` ask for everything with no transaction open (on SQLite an open
write transaction makes every other writer wait while the operator types), then write the user and its audit
event in one short transaction: both commit, or neither does."""

from __future__ import annotations

import getpass
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection

from tests.factories import UserFactory
from workforce.audit import verify_audit_chain
from workforce.management.commands.changepassword import Command as ChangePasswordCommand
from workforce.management.commands.createsuperuser import Command as CreateSuperuserCommand
from workforce.models import AuditEvent

# No test-wide transaction around each test: a prompt inside one would always see a transaction open.
pytestmark = pytest.mark.django_db(transaction=True)
OLD = "pw-for-tests"  # the factory's password
NEW = "Another-Long-Passw0rd!"


class _Sink:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


class _TTY:
    def isatty(self) -> bool:
        return True


class _Operator:
    """Types ``answers`` in turn at ``input`` and ``getpass`` prompts, noting whether a transaction was open at
    each; ``meanwhile`` runs at the first prompt (another writer's change while the operator types)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *answers: str, meanwhile: Any = None) -> None:
        self.answers = list(answers)
        self.prompts: list[tuple[str, bool]] = []
        self.meanwhile = meanwhile
        monkeypatch.setattr(getpass, "getpass", self.type)
        monkeypatch.setattr("builtins.input", self.type)

    def type(self, prompt: str = "Password: ") -> str:
        self.prompts.append((prompt, connection.in_atomic_block))
        if self.meanwhile is not None:
            self.meanwhile, meanwhile = None, self.meanwhile
            meanwhile()
        return self.answers.pop(0)

    def asked_outside_a_transaction(self) -> bool:
        return bool(self.prompts) and not any(in_transaction for _, in_transaction in self.prompts)


def test_changepassword_prompts_with_no_transaction_open_then_commits_the_change_and_its_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    staff = UserFactory(username="ops", is_staff=True)
    operator = _Operator(monkeypatch, NEW, NEW)
    call_command(ChangePasswordCommand(), "ops", stdout=_Sink())
    assert operator.asked_outside_a_transaction() and len(operator.prompts) == 2
    staff.refresh_from_db()
    assert staff.check_password(NEW)
    [event] = AuditEvent.objects.filter(action="user.password_changed")
    assert event.object_id == str(staff.pk) and event.before == {"usable_password": True}
    assert verify_audit_chain() is None


def test_changepassword_writes_only_the_password_so_a_change_made_while_it_was_typed_stays(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    staff = UserFactory(username="ops", is_staff=True)
    users = get_user_model()._default_manager

    def deactivated() -> None:
        users.filter(pk=staff.pk).update(is_active=False, first_name="Changed")

    operator = _Operator(monkeypatch, NEW, NEW, meanwhile=deactivated)
    call_command(ChangePasswordCommand(), "ops", stdout=_Sink())
    assert operator.asked_outside_a_transaction()
    staff.refresh_from_db()
    assert staff.check_password(NEW) and not staff.is_active and staff.first_name == "Changed"


def test_changepassword_for_a_user_deleted_while_it_was_typed_fails_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    staff = UserFactory(username="ops", is_staff=True)
    users = get_user_model()._default_manager
    _Operator(monkeypatch, NEW, NEW, meanwhile=lambda: users.filter(pk=staff.pk).delete())
    with pytest.raises(CommandError, match="user 'ops' does not exist"):
        call_command(ChangePasswordCommand(), "ops", stdout=_Sink())
    assert not AuditEvent.objects.filter(action="user.password_changed").exists()


def test_changepassword_whose_event_fails_leaves_the_password_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    staff = UserFactory(username="ops", is_staff=True)
    _Operator(monkeypatch, NEW, NEW)
    with (
        mock.patch("workforce.services.record_audit_event", side_effect=RuntimeError("audit down")),
        pytest.raises(RuntimeError, match="audit down"),
    ):
        call_command(ChangePasswordCommand(), "ops", stdout=_Sink())
    staff.refresh_from_db()
    assert staff.check_password(OLD)


def test_createsuperuser_at_a_terminal_prompts_with_no_transaction_open_then_commits_the_user_and_its_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A password the validators refuse: Django then asks whether to create the user anyway (one more prompt).
    operator = _Operator(monkeypatch, "admin2", "admin2@example.com", "admin2", "admin2", "y")
    call_command(CreateSuperuserCommand(), stdin=_TTY(), stdout=_Sink(), stderr=_Sink())
    assert operator.asked_outside_a_transaction()
    assert [prompt for prompt, _ in operator.prompts][-1].startswith("Bypass password validation")
    user = get_user_model()._default_manager.get(username="admin2")
    assert user.is_superuser and user.check_password("admin2")
    [event] = AuditEvent.objects.filter(action="user.created")
    assert event.object_id == str(user.pk) and event.after["is_superuser"] is True
    assert verify_audit_chain() is None


def test_createsuperuser_whose_event_fails_creates_no_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", NEW)
    with (
        mock.patch("workforce.services.record_audit_event", side_effect=RuntimeError("audit down")),
        pytest.raises(RuntimeError, match="audit down"),
    ):
        call_command(CreateSuperuserCommand(), "--noinput", "--username=root", "--email=", stdout=_Sink())
    assert not get_user_model()._default_manager.filter(username="root").exists()


def test_createsuperuser_leaves_the_command_as_it_found_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", NEW)
    command = CreateSuperuserCommand()
    call_command(command, "--noinput", "--username=root", "--email=", stdout=_Sink())
    assert command.UserModel is get_user_model()
