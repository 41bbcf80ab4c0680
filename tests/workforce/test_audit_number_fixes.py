"""An untouched trail verifies on every database, whatever numbers its events hold; audit_verify names every
broken event, not only the first."""

from __future__ import annotations

import math
import random
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from workforce.audit import (
    CANONICAL_FIELDS,
    Actor,
    QueuedEvent,
    audit_guards_lifted,
    canonical_event,
    chain_hash,
    queue_audit_event,
    record_audit_event,
    record_audit_events,
    seal_all_audit_events,
    verify_audit_chain,
)
from workforce.models import AuditChainHead, AuditEvent

pytestmark = pytest.mark.django_db
SYS = Actor.system("tests")
LARGE_FLOATS = [1e16, 1e23, -2.5e20, 1.5e300, 123456789012345678.0, 1.2345678901234567e16, 1.7976931348623157e308]


def _stored(event: AuditEvent) -> AuditEvent:
    return AuditEvent.objects.get(pk=event.pk)


def test_negative_zero_is_stored_as_the_zero_postgresql_gives_back_and_the_trail_verifies() -> None:
    event = record_audit_event(
        actor=SYS, action="t.zero", object_type="job", object_id=1, after={"x": -0.0, "n": [{"y": -0.0}]}
    )
    record_audit_event(actor=SYS, action="t.later", object_type="job", object_id=1)
    after = _stored(event).after
    assert math.copysign(1, after["x"]) == 1 and math.copysign(1, after["n"][0]["y"]) == 1
    assert verify_audit_chain() is None


@pytest.mark.parametrize("number", LARGE_FLOATS)
def test_a_large_float_is_stored_as_the_whole_number_its_decimal_spells_and_the_trail_verifies(number: float) -> None:
    event = record_audit_event(actor=SYS, action="t.float", object_type="job", object_id=1, after={"n": number})
    record_audit_event(actor=SYS, action="t.later", object_type="job", object_id=1)
    stored = _stored(event).after["n"]
    assert type(stored) is int and stored == int(Decimal(repr(number)))
    assert verify_audit_chain() is None


def test_thousands_of_random_floats_round_trip_through_the_database_and_verify() -> None:
    rng = random.Random(20261130)
    numbers = [rng.uniform(-10, 10) * 10.0 ** rng.randint(-320, 305) for _ in range(2000)]
    numbers += [-0.0, 0.0, 5e-324, 1e-7, 0.1, 9999999999999998.0, 1e15 + 0.5]
    record_audit_events([QueuedEvent(SYS, "t.random", "job", i, after={"n": numbers[i::50]}) for i in range(50)])
    record_audit_event(actor=SYS, action="t.later", object_type="job", object_id=1)
    assert verify_audit_chain() is None


def test_queued_events_holding_such_numbers_verify_once_sealed() -> None:
    queue_audit_event(actor=SYS, action="t.queued", object_type="job", object_id=1, after={"x": -0.0, "n": 1e23})
    seal_all_audit_events()
    record_audit_event(actor=SYS, action="t.later", object_type="job", object_id=1)
    assert AuditEvent.objects.get(action="t.queued").after == {"x": 0.0, "n": 10**23}
    assert verify_audit_chain() is None


def test_a_job_configured_with_a_gold_rate_of_minus_zero_keeps_the_trail_verifiable(ops_manager: Any) -> None:
    from tasks.services.jobs import configure_job
    from tests.factories import JobFactory

    job: Any = JobFactory(gold_rate=0.1)
    job.gold_rate = float("-0")
    configure_job(job=job, actor=Actor.from_user(ops_manager))
    record_audit_event(actor=SYS, action="t.later", object_type="job", object_id=job.pk)
    assert AuditEvent.objects.filter(action="job.configured").exists()
    assert verify_audit_chain() is None
    call_command("audit_verify", stdout=StringIO(), stderr=StringIO())


def _append_as_the_earlier_code_did(after: dict[str, Any]) -> AuditEvent:
    """An event hashed on its payload as given (-0.0, float 1e23) and stored unchanged: what the code before
    ``storable_json`` wrote. PostgreSQL gives it back as 0.0 and 10**23; SQLite as it was."""
    head, _ = AuditChainHead.objects.get_or_create(id=1)
    fields = {
        "created_at": AuditEvent.objects.order_by("-id").values_list("created_at", flat=True).first(),
        "actor_kind": "system",
        "actor_id": "",
        "actor_label": "tests",
        "action": "t.legacy",
        "object_type": "job",
        "object_id": "1",
        "before": {},
        "after": after,
        "reason": "",
        "request_id": "",
    }
    digest = chain_hash(head.last_hash, canonical_event(fields))
    [event] = AuditEvent.objects.bulk_create([AuditEvent(previous_hash=head.last_hash, hash=digest, **fields)])
    AuditChainHead.objects.filter(id=1).update(last_hash=digest, count=head.count + 1)
    return event


def test_events_stored_by_the_earlier_code_still_verify_on_any_database() -> None:
    record_audit_event(actor=SYS, action="t.first", object_type="job", object_id=1)
    _append_as_the_earlier_code_did({"x": -0.0, "y": 0.0, "n": [1e23, 10**23, 1.5e300], "m": -2.5e20})
    record_audit_event(actor=SYS, action="t.later", object_type="job", object_id=1)
    assert verify_audit_chain() is None
    call_command("audit_verify", stdout=StringIO(), stderr=StringIO())


def _tamper(sql: str, params: list[Any]) -> None:
    with audit_guards_lifted(), connection.cursor() as cur:  # someone with DDL rights switches the guards off first
        cur.execute(sql, params)


def test_the_earlier_reading_accepts_only_the_same_numbers_written_another_way() -> None:
    record_audit_event(actor=SYS, action="t.first", object_type="job", object_id=1)
    legacy = _append_as_the_earlier_code_did({"n": 1e23})
    _tamper("UPDATE workforce_auditevent SET after = %s WHERE id = %s", ['{"n": 100000000000000000000001}', legacy.pk])
    assert verify_audit_chain() == legacy


def _five_events() -> list[AuditEvent]:
    return [
        record_audit_event(actor=SYS, action="t.event", object_type="job", object_id=i, after={"i": i})
        for i in range(5)
    ]


def test_every_broken_event_is_found_and_only_those() -> None:
    from workforce.audit import find_broken_audit_events

    events = _five_events()
    _tamper("UPDATE workforce_auditevent SET reason = 'edited' WHERE id IN (%s, %s)", [events[1].pk, events[3].pk])
    assert [e.pk for e in find_broken_audit_events()] == [events[1].pk, events[3].pk]
    assert verify_audit_chain() == events[1]


def test_a_deleted_event_is_reported_once_at_the_event_after_it() -> None:
    from workforce.audit import find_broken_audit_events

    events = _five_events()
    _tamper("DELETE FROM workforce_auditevent WHERE id = %s", [events[2].pk])
    assert [e.pk for e in find_broken_audit_events()] == [events[3].pk]


def test_audit_verify_lists_every_broken_event_and_exits_1() -> None:
    events = _five_events()
    _tamper("UPDATE workforce_auditevent SET reason = 'edited' WHERE id IN (%s, %s)", [events[1].pk, events[3].pk])
    err = StringIO()
    with pytest.raises(CommandError, match=f"^Audit event {events[1].pk} ") as info:
        call_command("audit_verify", stdout=StringIO(), stderr=err)
    assert info.value.returncode == 1
    assert "2 audit events in all do not match their hash" in str(info.value)
    assert [line.split()[2] for line in err.getvalue().splitlines()] == [str(events[1].pk), str(events[3].pk)]


def test_audit_verify_reports_a_broken_event_and_a_checkpoint_it_no_longer_holds_together() -> None:
    events = _five_events()
    out = StringIO()
    call_command("audit_verify", stdout=out)
    checkpoint = out.getvalue().rsplit(" ", 1)[-1].strip()
    assert checkpoint.startswith("5:")
    call_command("audit_verify", "--checkpoint", checkpoint, stdout=out)
    assert "1 checkpoint(s) held" in out.getvalue()
    _tamper("UPDATE workforce_auditevent SET hash = %s WHERE id = %s", ["f" * 64, events[4].pk])
    with pytest.raises(CommandError) as info:
        call_command("audit_verify", "--checkpoint", checkpoint, stdout=StringIO(), stderr=StringIO())
    assert info.value.returncode == 1
    assert str(info.value).startswith(f"Audit event {events[4].pk} ") and "not the checkpoint's" in str(info.value)


def test_canonical_event_hashes_a_stored_event_as_before() -> None:
    """The hash of events already stored does not change: the canonical form is the one they were hashed on."""
    event = record_audit_event(actor=SYS, action="t.kept", object_type="job", object_id=1, after={"n": 1, "f": 0.5})
    fields = {name: getattr(_stored(event), name) for name in CANONICAL_FIELDS}
    assert canonical_event({**fields, "after": {"n": 1e16}}) == canonical_event({**fields, "after": {"n": 10**16}})
    assert event.hash == chain_hash(event.previous_hash, canonical_event(fields))
