"""The database refuses changing or deleting audit rows on SQLite as on PostgreSQL (migrations 0002, 0003, 0005,
0007); ``audit_guards_lifted`` is the one maintenance path past them, and Django's flush still empties the trail."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from workforce.audit import ROW_GUARDS, Actor, audit_guards_lifted, queue_audit_event, record_audit_event
from workforce.models import AuditChainHead, AuditEvent, PendingAuditEvent

SYS = Actor.system("tests")


def _events(n: int = 3) -> list[AuditEvent]:
    return [record_audit_event(actor=SYS, action="t.event", object_type="job", object_id=i) for i in range(n)]


def _refused(sql: str, params: list[Any] | None = None) -> str:
    with pytest.raises(DatabaseError) as info, transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, params)
    return str(info.value)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE workforce_auditevent SET reason = 'rewritten' WHERE id = %s",
        "UPDATE workforce_auditevent SET previous_hash = hash WHERE id = %s",
        "DELETE FROM workforce_auditevent WHERE id = %s",
        "DELETE FROM workforce_auditevent WHERE id >= %s",
    ],
)
def test_the_database_refuses_changing_or_deleting_an_audit_event(sql: str) -> None:
    events = _events()
    assert "append-only" in _refused(sql, [events[1].pk])
    assert list(AuditEvent.objects.values_list("hash", "reason")) == [(e.hash, "") for e in events]


@pytest.mark.django_db
def test_queryset_updates_and_deletes_which_skip_the_models_guard_are_refused_too() -> None:
    _events()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(action="t.event").update(reason="rewritten")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.filter(reason="").count() == 3


@pytest.mark.django_db
def test_the_database_refuses_changing_a_pending_event_and_deleting_the_chain_head() -> None:
    _events(1)
    queue_audit_event(actor=SYS, action="t.queued", object_type="job", object_id=1)
    pending = PendingAuditEvent.objects.get()
    changed = _refused("UPDATE workforce_pendingauditevent SET reason = 'x' WHERE id = %s", [pending.pk])
    assert "cannot be changed" in changed
    assert "cannot be deleted" in _refused("DELETE FROM workforce_auditchainhead")
    assert AuditChainHead.objects.get().count == 1 and PendingAuditEvent.objects.get().reason == ""


@pytest.mark.django_db
def test_every_row_guard_exists_after_all_migrations() -> None:
    """SQLite drops a table's triggers when a migration rebuilds it: a later migration must create them again."""
    with connection.cursor() as cur:
        if connection.vendor == "sqlite":
            cur.execute("SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger'")
        else:
            cur.execute("SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal")
        present = set(cur.fetchall())
    assert set(ROW_GUARDS[connection.vendor]) <= present


@pytest.mark.django_db
def test_the_guards_are_lifted_only_inside_the_maintenance_block_and_come_back_after_it() -> None:
    events = _events()
    with audit_guards_lifted(), connection.cursor() as cur:
        cur.execute("UPDATE workforce_auditevent SET reason = 'repaired' WHERE id = %s", [events[0].pk])
    assert AuditEvent.objects.get(pk=events[0].pk).reason == "repaired"
    assert "append-only" in _refused("DELETE FROM workforce_auditevent WHERE id = %s", [events[1].pk])

    with pytest.raises(ZeroDivisionError), audit_guards_lifted(), connection.cursor() as cur:
        cur.execute("DELETE FROM workforce_auditevent WHERE id = %s", [events[1].pk])
        raise ZeroDivisionError  # a failed maintenance rolls back, guards included
    assert AuditEvent.objects.count() == 3
    assert "append-only" in _refused("DELETE FROM workforce_auditevent WHERE id = %s", [events[1].pk])


@pytest.mark.django_db(transaction=True)
def test_flush_still_empties_the_whole_trail_and_leaves_it_guarded() -> None:
    """What the teardown of every transactional test does (``DELETE FROM`` each table on SQLite)."""
    _events()
    queue_audit_event(actor=SYS, action="t.queued", object_type="job", object_id=1)
    call_command("flush", interactive=False, verbosity=0)
    assert not AuditEvent.objects.exists() and not AuditChainHead.objects.exists()
    assert not PendingAuditEvent.objects.exists()
    [event] = _events(1)
    assert "append-only" in _refused("DELETE FROM workforce_auditevent WHERE id = %s", [event.pk])
