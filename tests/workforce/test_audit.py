from __future__ import annotations

import pytest
from django.db import connection

from tasks.tasks import expire_leases_task
from workforce.audit import Actor, audit_guards_lifted, record_audit_event, verify_audit_chain
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db


def _three_events() -> list[AuditEvent]:
    actor = Actor.system("tests")
    return [
        record_audit_event(actor=actor, action="job.created", object_type="job", object_id=1, after={"name": "a"}),
        record_audit_event(
            actor=actor, action="job.published", object_type="job", object_id=1, before={"state": "draft"}
        ),
        record_audit_event(actor=actor, action="job.paused", object_type="job", object_id=1, reason="why not"),
    ]


def test_events_form_a_hash_chain_that_verifies():
    events = _three_events()
    assert events[0].previous_hash == "0" * 64
    assert events[1].previous_hash == events[0].hash
    assert events[2].previous_hash == events[1].hash
    assert verify_audit_chain() is None


@pytest.mark.parametrize(
    ("column", "value"), [("reason", "edited"), ("actor_label", "someone else"), ("after", '{"x": 1}')]
)
def test_tampering_with_a_past_event_is_caught(column, value):
    events = _three_events()
    with audit_guards_lifted(), connection.cursor() as cur:  # someone with DDL rights switches the guards off first
        cur.execute(f"UPDATE workforce_auditevent SET {column} = %s WHERE id = %s", [value, events[1].pk])
    broken = verify_audit_chain()
    assert broken is not None and broken.pk == events[1].pk


def test_events_cannot_be_changed_or_deleted_through_the_orm():
    event = _three_events()[0]
    event.reason = "rewritten"
    with pytest.raises(RuntimeError, match="append-only"):
        event.save()
    with pytest.raises(RuntimeError, match="append-only"):
        event.delete()


def test_the_beat_schedule_names_registered_tasks():
    from django.conf import settings

    from config.celery import app

    app.loader.import_default_modules()  # what a worker or beat does at start: autodiscover each app's tasks
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks
    assert expire_leases_task.name == settings.CELERY_BEAT_SCHEDULE["expire-leases"]["task"]


def test_the_database_refuses_updates_and_deletes_of_audit_events():
    from django.db import DatabaseError, transaction

    event = _three_events()[0]
    for sql in (
        "UPDATE workforce_auditevent SET reason = 'x' WHERE id = %s",
        "DELETE FROM workforce_auditevent WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql, [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk, reason="").exists()


def test_audit_verify_exits_0_when_intact_and_1_naming_the_tampered_event(capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    events = _three_events()
    call_command("audit_verify")
    assert "3 event(s) verified" in capsys.readouterr().out
    with audit_guards_lifted(), connection.cursor() as cur:  # someone with DDL rights switches the guards off first
        cur.execute("UPDATE workforce_auditevent SET object_id = '2' WHERE id = %s", [events[2].pk])
    with pytest.raises(CommandError, match=f"Audit event {events[2].pk} ") as info:
        call_command("audit_verify")
    assert info.value.returncode == 1


@pytest.mark.parametrize("keep", [2, 0])
def test_audit_verify_catches_events_cut_from_the_end(keep, capsys):
    """A chain cut at its end is whole in itself; the chain head still knows how many events there were."""
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from workforce.audit import check_chain_end

    events = _three_events()
    assert check_chain_end() is None
    with audit_guards_lifted(), connection.cursor() as cur:  # someone with DDL rights switches the guards off first
        cur.execute("DELETE FROM workforce_auditevent WHERE id > %s", [events[keep - 1].pk if keep else 0])
    assert verify_audit_chain() is None  # what is left still chains
    with pytest.raises(CommandError, match=f"with {keep} event\\(s\\), but 3 were chained") as info:
        call_command("audit_verify")
    assert info.value.returncode == 1
    assert "intact" not in capsys.readouterr().out


def test_a_chain_rewritten_and_rehashed_in_the_database_fails_against_a_kept_checkpoint(capsys):
    """Someone with write access edits an event and re-hashes everything after it, head included: the chain
    is whole again, but not the one a checkpoint printed earlier and kept elsewhere vouches for."""
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from workforce.audit import CANONICAL_FIELDS, canonical_event, chain_hash
    from workforce.models import AuditChainHead

    _three_events()
    call_command("audit_verify")
    checkpoint = capsys.readouterr().out.rsplit(" ", 1)[-1].strip()
    assert checkpoint.startswith("3:")
    with audit_guards_lifted(), connection.cursor() as cur:  # someone with DDL rights switches the guards off first
        cur.execute("UPDATE workforce_auditevent SET reason = 'nothing to see' WHERE action = 'job.published'")
        previous = "0" * 64
        for event in AuditEvent.objects.order_by("id"):
            digest = chain_hash(previous, canonical_event({n: getattr(event, n) for n in CANONICAL_FIELDS}))
            cur.execute(
                "UPDATE workforce_auditevent SET previous_hash = %s, hash = %s WHERE id = %s",
                [previous, digest, event.pk],
            )
            previous = digest
    AuditChainHead.objects.filter(id=1).update(last_hash=previous)
    call_command("audit_verify")  # whole in itself
    assert "3 event(s) verified" in capsys.readouterr().out
    with pytest.raises(CommandError, match=r"Event number 3 .* not the checkpoint's") as info:
        call_command("audit_verify", "--checkpoint", checkpoint)
    assert info.value.returncode == 1
    with pytest.raises(CommandError, match="A checkpoint is written") as info:
        call_command("audit_verify", "--checkpoint", "3:nothex")
    assert info.value.returncode == 2


def test_audit_export_writes_events_since_a_date(tmp_path):
    import csv
    import json

    from django.core.management import call_command
    from django.core.management.base import CommandError

    _three_events()
    out = tmp_path / "audit.jsonl"
    call_command("audit_export", "--since", "2000-01-01", "--format", "jsonl", "--output", str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["action"] for r in rows] == ["job.created", "job.published", "job.paused"]
    assert rows[1]["previous_hash"] == rows[0]["hash"]
    out_csv = tmp_path / "audit.csv"
    call_command("audit_export", "--since", "2999-01-01", "--format", "csv", "--output", str(out_csv))
    assert list(csv.reader(out_csv.open()))[1:] == []
    with pytest.raises(CommandError, match="--since") as info:
        call_command("audit_export", "--since", "yesterday")
    assert info.value.returncode == 2


def test_staff_logins_and_failed_logins_are_audited_with_the_request_id():
    from django.test import Client

    from tests.factories import UserFactory

    UserFactory(username="boss", is_staff=True)
    UserFactory(username="crowd", is_staff=False)
    client = Client()
    response = client.post(
        "/accounts/login/", {"username": "boss", "password": "pw-for-tests"}, HTTP_X_REQUEST_ID="req-12345678"
    )
    assert response.status_code == 302 and response["X-Request-ID"] == "req-12345678"
    Client().post("/accounts/login/", {"username": "boss", "password": "wrong"})
    Client().post("/accounts/login/", {"username": "crowd", "password": "pw-for-tests"})
    events = list(AuditEvent.objects.filter(action__in=["staff.login", "login.failed"]).order_by("id"))
    assert [(e.action, e.object_id) for e in events] == [
        ("staff.login", str(events[0].object_id)),
        ("login.failed", "boss"),
    ]
    assert events[0].request_id == "req-12345678"
    assert len(events[1].request_id) == 32  # generated when the client sends none
    assert verify_audit_chain() is None


def test_an_event_holding_huge_floats_verifies_after_a_round_trip_through_the_database():
    """jsonb gives 1e16 back as the integer 10000000000000000; the hash must not depend on which form it sees."""
    actor = Actor.system("tests")
    record_audit_event(
        actor=actor, action="test.big_numbers", object_type="job", object_id=1, after={"n": 1e16, "m": [-2.5e20, 0.1]}
    )
    record_audit_event(actor=actor, action="test.after", object_type="job", object_id=1)
    assert verify_audit_chain() is None  # the round trip matters on PostgreSQL; SQLite keeps the float
    # On any database: the float and the integer jsonb hands back hash the same.
    from workforce.audit import CANONICAL_FIELDS, canonical_event

    stored = AuditEvent.objects.get(action="test.big_numbers")
    fields = {name: getattr(stored, name) for name in CANONICAL_FIELDS}
    assert canonical_event({**fields, "after": {"n": 1e16}}) == canonical_event({**fields, "after": {"n": 10**16}})
