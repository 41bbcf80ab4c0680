"""The demo command's accounts are audited as the admin audits accounts: ``user.created`` with what each may do,
and on a later run ``user.password_changed`` (its new password) and ``user.changed`` when its access moved."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from tasks.demo_history import CROWD
from tasks.roles import CROWD_WORKER, FINANCE, OPS_MANAGER, REVIEWER
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db

ACCOUNTS = {
    "ops": (True, OPS_MANAGER),
    "finance": (True, FINANCE),
    "reviewer": (True, REVIEWER),
    "worker1": (False, CROWD_WORKER),
    "worker2": (False, CROWD_WORKER),
}


def _demo(*args: str) -> None:
    call_command("demo", "--workers", "2", *args, stdout=StringIO(), stderr=StringIO())


def _user_events(username: str) -> list[AuditEvent]:
    pk = get_user_model().objects.get(username=username).pk
    return list(AuditEvent.objects.filter(object_type="user", object_id=str(pk)).order_by("id"))


def test_every_demo_account_is_audited_as_created_with_what_it_may_do() -> None:
    _demo("--no-worked-job")
    for username, (staff, group) in ACCOUNTS.items():
        [created] = _user_events(username)
        assert created.action == "user.created" and created.actor_label == "demo command"
        assert created.before == {}
        assert created.after == {
            "is_active": True,
            "is_staff": staff,
            "is_superuser": False,
            "groups": [group],
            "permissions": [],
            "usable_password": True,
        }
    assert not AuditEvent.objects.filter(after__has_key="password").exists()


def test_running_the_demo_again_audits_the_new_passwords_and_a_restored_role() -> None:
    _demo("--no-worked-job")
    get_user_model().objects.filter(username="finance").update(is_staff=False)
    _demo("--no-worked-job")
    for username in ACCOUNTS:
        actions = [e.action for e in _user_events(username)]
        expected = ["user.created", "user.password_changed"] + (["user.changed"] if username == "finance" else [])
        assert actions == expected, username
    changed = _user_events("finance")[-1]
    assert changed.before["is_staff"] is False and changed.after["is_staff"] is True
    assert AuditEvent.objects.filter(action="user.created").count() == len(ACCOUNTS)


def test_the_simulated_crowd_of_the_worked_job_is_audited_as_created_too() -> None:
    _demo()
    for sim in CROWD:
        [created] = _user_events(sim.username)
        assert created.action == "user.created"
        assert created.after["usable_password"] is False and created.after["groups"] == []
