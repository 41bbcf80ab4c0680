"""The database guards the chain head (it only moves forward) and, on PostgreSQL, refuses TRUNCATE of the
trail unless it is emptied as a whole."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from workforce.audit import (
    Actor,
    audit_guards_lifted,
    check_chain_end,
    queue_audit_event,
    record_audit_event,
    seal_all_audit_events,
)
from workforce.models import AuditChainHead, AuditEvent

pytestmark = pytest.mark.django_db
SYS = Actor.system("tests")
only_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="the guard exists on PostgreSQL only")


def _events(n: int = 5) -> list[AuditEvent]:
    return [record_audit_event(actor=SYS, action="t.event", object_type="job", object_id=i) for i in range(n)]


def _refused(sql: str, params: list[Any] | None = None) -> str:
    with pytest.raises(DatabaseError) as info, transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, params)
    return str(info.value)


def test_the_chain_head_refuses_being_rewound() -> None:
    events = _events()
    assert "only moves forward" in _refused("UPDATE workforce_auditchainhead SET count = count - 1 WHERE id = 1")
    assert "only moves forward" in _refused(
        "UPDATE workforce_auditchainhead SET count = 3, last_hash = %s WHERE id = 1", [events[2].hash]
    )
    assert AuditChainHead.objects.get().count == 5


def test_the_head_still_moves_forward_for_appends_and_sealing() -> None:
    _events(2)
    queue_audit_event(actor=SYS, action="t.queued", object_type="job", object_id=1)
    assert seal_all_audit_events() == 1
    _events(1)
    assert AuditChainHead.objects.get().count == 4 and check_chain_end() is None
    call_command("audit_verify", stdout=StringIO())


def test_cutting_the_end_cannot_be_hidden_by_rewinding_the_head() -> None:
    events = _events()
    with audit_guards_lifted(), connection.cursor() as cur:  # someone with DDL rights switches the row guards off first
        cur.execute("DELETE FROM workforce_auditevent WHERE id > %s", [events[2].pk])
    _refused("UPDATE workforce_auditchainhead SET count = 3, last_hash = %s WHERE id = 1", [events[2].hash])
    with pytest.raises(CommandError, match="with 3 event\\(s\\), but 5 were chained") as info:
        call_command("audit_verify", stdout=StringIO(), stderr=StringIO())
    assert info.value.returncode == 1


def test_the_database_refuses_deleting_the_chain_head() -> None:
    _events(1)
    assert "cannot be deleted" in _refused("DELETE FROM workforce_auditchainhead")
    assert AuditChainHead.objects.filter(id=1).exists()


@only_postgresql
@pytest.mark.parametrize("table", ["workforce_auditevent", "workforce_auditchainhead"])
def test_postgresql_refuses_truncating_the_events_or_the_head_alone(table: str) -> None:
    _events(3)
    assert "truncated as a whole" in _refused(f"TRUNCATE {table}")
    assert AuditEvent.objects.count() == 3 and AuditChainHead.objects.get().count == 3


@only_postgresql
def test_postgresql_lets_the_whole_trail_be_reset_which_a_kept_checkpoint_catches() -> None:
    """What Django's flush between transactional tests does; the reset is visible against a checkpoint."""
    _events(3)
    out = StringIO()
    call_command("audit_verify", stdout=out)
    checkpoint = out.getvalue().rsplit(" ", 1)[-1].strip()
    with connection.cursor() as cur:
        cur.execute("TRUNCATE workforce_auditevent, workforce_auditchainhead")
    with pytest.raises(CommandError, match="beyond the trail's end") as info:
        call_command("audit_verify", "--checkpoint", checkpoint, stdout=StringIO(), stderr=StringIO())
    assert info.value.returncode == 1
