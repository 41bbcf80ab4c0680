"""Hot-path audit events: queued without the chain lock, sealed into the chain in order, tamper-evident."""

from __future__ import annotations

import itertools

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from tasks.models import AssignmentState
from tasks.services.collection import submit_assignment
from tasks.services.errors import SubmissionRefused
from tasks.services.pool import assign_next_hit, expire_leases, return_assignment
from workforce.audit import (
    Actor,
    audit_guards_lifted,
    queue_audit_event,
    record_audit_event,
    seal_audit_events,
    verify_audit_chain,
)
from workforce.models import AuditEvent, PendingAuditEvent
from workforce.tasks import seal_audit_events_task

pytestmark = pytest.mark.django_db


def _events_after(first_id: int) -> list[tuple[str, str, str, str, dict, dict]]:
    return [
        (e.actor_kind, e.actor_id, e.action, e.object_id, e.before, e.after)
        for e in AuditEvent.objects.filter(id__gt=first_id).order_by("id")
    ]


def _last_id() -> int:
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _item_ids(assignment):
    return list(assignment.hit.items.order_by("hit_items__position").values_list("id", flat=True))


def test_accept_and_submit_write_exactly_these_events_in_this_order(make_published_job, make_worker):
    job = make_published_job(items=2, items_per_hit=2, redundancy=1)
    worker = make_worker()
    start = _last_id()
    lease = assign_next_hit(job=job, worker=worker)
    assert assign_next_hit(job=job, worker=worker).pk == lease.pk  # the current lease again: no second event
    first, second = _item_ids(lease)
    submit_assignment(assignment=lease, worker=worker, answers={first: "pos", second: "neg"})
    # Nothing reached the chain yet: the hot paths only queued their events.
    assert _last_id() == start and PendingAuditEvent.objects.count() == 3
    assert seal_audit_events_task() == 3
    assert PendingAuditEvent.objects.count() == 0
    lease.refresh_from_db()
    w = str(worker.pk)
    assert _events_after(start) == [
        (
            "worker",
            w,
            "assignment.accepted",
            str(lease.pk),
            {},
            {
                "state": "accepted",
                "job": job.pk,
                "hit": lease.hit_id,
                "lease_expires_at": lease.lease_expires_at.isoformat(),
            },
        ),
        (
            "worker",
            w,
            "assignment.submitted",
            str(lease.pk),
            {"state": "accepted"},
            {"state": "submitted", "answers": {str(first): "pos", str(second): "neg"}},
        ),
        ("system", "", "job.completed", str(job.pk), {"state": "published"}, {"state": "completed"}),
    ]
    accepted, submitted = AuditEvent.objects.filter(id__gt=start, object_type="assignment").order_by("id")
    # Sealing keeps the time of the action, not the time of sealing.
    assert accepted.created_at == lease.accepted_at and submitted.created_at == lease.submitted_at
    assert verify_audit_chain() is None


def test_a_refused_submit_leaves_no_event(make_published_job, make_worker):
    job = make_published_job(items=1)
    worker = make_worker()
    lease = assign_next_hit(job=job, worker=worker)
    with pytest.raises(SubmissionRefused):
        submit_assignment(assignment=lease, worker=worker, answers={_item_ids(lease)[0]: "nonsense"})
    assert list(PendingAuditEvent.objects.values_list("action", flat=True)) == ["assignment.accepted"]


def test_returns_and_expiries_are_audited(make_published_job, make_worker):
    job = make_published_job(items=3)
    worker, other = make_worker(), make_worker()
    returned = assign_next_hit(job=job, worker=worker)
    return_assignment(assignment=returned, worker=worker)
    abandoned = assign_next_hit(job=job, worker=other)
    assert expire_leases(now=abandoned.lease_expires_at) == 1
    seal_audit_events()
    rows = list(
        AuditEvent.objects.filter(object_type="assignment").order_by("id").values_list("action", "object_id", "after")
    )
    assert rows == [
        ("assignment.accepted", str(returned.pk), rows[0][2]),
        ("assignment.returned", str(returned.pk), {"state": AssignmentState.RETURNED.value}),
        ("assignment.accepted", str(abandoned.pk), rows[2][2]),
        ("assignment.expired", str(abandoned.pk), {"state": AssignmentState.EXPIRED.value}),
    ]


def test_sealed_events_interleave_with_direct_appends_in_one_verifiable_chain():
    actor = Actor.system("tests")
    record_audit_event(actor=actor, action="a.direct", object_type="x", object_id=1)
    queue_audit_event(actor=actor, action="b.queued", object_type="x", object_id=1)
    queue_audit_event(actor=actor, action="c.queued", object_type="x", object_id=1)
    assert seal_audit_events(limit=1) == 1  # sealing in several runs continues the same chain
    queue_audit_event(actor=actor, action="d.queued", object_type="x", object_id=1)
    with transaction.atomic():
        queue_audit_event(actor=actor, action="e.queued", object_type="x", object_id=1)
        # A direct append seals what is pending first, so a transaction's own events keep their order.
        record_audit_event(actor=actor, action="f.direct", object_type="x", object_id=1)
    assert seal_audit_events() == 0
    events = list(AuditEvent.objects.order_by("id"))
    assert [e.action for e in events] == ["a.direct", "b.queued", "c.queued", "d.queued", "e.queued", "f.direct"]
    assert all(e.previous_hash == p.hash for p, e in itertools.pairwise(events))
    assert verify_audit_chain() is None


def _tamper(sql: str, params: list[object]) -> None:
    with audit_guards_lifted(), connection.cursor() as cur:  # someone with DDL rights switches the guards off first
        cur.execute(sql, params)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("after", '{"state": "submitted", "answers": {"1": "neg"}}'),
        ("actor_id", "999"),
        ("created_at", "2020-01-01 00:00:00"),
        ("action", "assignment.returned"),
    ],
)
def test_tampering_with_a_sealed_assignment_event_fails_audit_verify(make_published_job, make_worker, column, value):
    job = make_published_job(items=1)
    worker = make_worker()
    lease = assign_next_hit(job=job, worker=worker)
    submit_assignment(assignment=lease, worker=worker, answers={_item_ids(lease)[0]: "pos"})
    call_command("audit_verify")  # seals, then verifies: intact
    submitted = AuditEvent.objects.get(action="assignment.submitted")
    _tamper(f"UPDATE workforce_auditevent SET {column} = %s WHERE id = %s", [value, submitted.pk])
    with pytest.raises(CommandError, match=f"Audit event {submitted.pk} ") as info:
        call_command("audit_verify")
    assert info.value.returncode == 1


def test_deleting_a_sealed_event_fails_audit_verify(make_published_job, make_worker):
    job = make_published_job(items=2)
    worker = make_worker()
    lease = assign_next_hit(job=job, worker=worker)
    submit_assignment(assignment=lease, worker=worker, answers={_item_ids(lease)[0]: "pos"})
    seal_audit_events()
    accepted = AuditEvent.objects.get(action="assignment.accepted")
    _tamper("DELETE FROM workforce_auditevent WHERE id = %s", [accepted.pk])
    broken = verify_audit_chain()
    assert broken is not None and broken.action == "assignment.submitted"


def test_pending_events_cannot_be_changed_through_the_orm():
    queue_audit_event(actor=Actor.system("tests"), action="x.queued", object_type="x", object_id=1)
    pending = PendingAuditEvent.objects.get()
    pending.reason = "rewritten"
    with pytest.raises(RuntimeError, match="cannot be changed"):
        pending.save()


def test_the_database_refuses_updates_of_pending_events():
    queue_audit_event(actor=Actor.system("tests"), action="x.queued", object_type="x", object_id=1)
    pending = PendingAuditEvent.objects.get()
    with pytest.raises(DatabaseError, match="cannot be changed"), transaction.atomic(), connection.cursor() as cur:
        cur.execute("UPDATE workforce_pendingauditevent SET reason = 'x' WHERE id = %s", [pending.pk])
    seal_audit_events()
    assert AuditEvent.objects.get(action="x.queued").reason == ""
