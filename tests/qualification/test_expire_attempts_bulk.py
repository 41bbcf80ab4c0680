"""The attempt-expiry sweep is set-based: the same queries for 3 or 30 overdue attempts, one audit event each."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from qualification.models import Attempt, AttemptState, QualificationTest
from qualification.services import expire_overdue_attempts, start_attempt
from tests.factories import WorkerFactory
from tests.qualification.conftest import T0
from workforce.audit import seal_all_audit_events, verify_audit_chain
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
MakeTest = Callable[..., QualificationTest]
LATER = T0 + timedelta(hours=1)


def _start(test: QualificationTest, n: int) -> list[int]:
    return [start_attempt(test=test, worker=WorkerFactory(), now=T0).pk for _ in range(n)]


def _sweep_queries() -> int:
    with CaptureQueriesContext(connection) as ctx:
        expire_overdue_attempts(now=LATER)
    return len(ctx.captured_queries)


def test_expiring_3_or_30_overdue_attempts_costs_the_same_queries(make_test: MakeTest) -> None:
    test = make_test(time_limit=timedelta(minutes=10))
    _start(test, 3)
    at_3 = _sweep_queries()
    _start(test, 30)
    at_30 = _sweep_queries()
    assert Attempt.objects.filter(state=AttemptState.OPEN).count() == 0
    assert at_30 == at_3, f"{at_3} queries to expire 3 attempts, {at_30} for 30"


def test_the_sweep_writes_one_expiry_event_per_attempt_as_before(make_test: MakeTest) -> None:
    test = make_test(time_limit=timedelta(minutes=10))
    overdue = _start(test, 4)
    fresh = start_attempt(test=test, worker=WorkerFactory(), now=LATER)
    assert expire_overdue_attempts(now=LATER) == 4
    assert expire_overdue_attempts(now=LATER) == 0  # a second sweep finds nothing and audits nothing
    closed = Attempt.objects.filter(pk__in=overdue)
    assert {(a.state, a.score, a.passed) for a in closed} == {(AttemptState.EXPIRED, 0.0, False)}
    fresh.refresh_from_db()
    assert fresh.state == AttemptState.OPEN
    events = AuditEvent.objects.filter(action="qualification.attempt_expired")
    assert sorted(int(e.object_id) for e in events) == sorted(overdue)
    for event in events:
        assert (event.object_type, event.actor_kind, event.actor_label) == (
            "qualification_attempt",
            "system",
            "expire_overdue_attempts",
        )
        assert (event.before, event.after) == ({"state": "open"}, {"state": "expired", "score": 0.0})
    seal_all_audit_events()
    assert verify_audit_chain() is None


def test_starting_again_expires_the_workers_overdue_attempt_with_its_event(make_test: MakeTest) -> None:
    test = make_test(time_limit=timedelta(minutes=10), retry_delay=timedelta(0))
    worker = WorkerFactory()
    first = start_attempt(test=test, worker=worker, now=T0)
    second = start_attempt(test=test, worker=worker, now=LATER)
    first.refresh_from_db()
    assert (first.state, second.state) == (AttemptState.EXPIRED, AttemptState.OPEN)
    event = AuditEvent.objects.get(action="qualification.attempt_expired")
    assert (event.object_id, event.actor_kind) == (str(first.pk), "worker")
