"""Revoking many grants at once: the same rows and audit events as revoking them one by one, in a number of
queries that does not grow with the number of grants (the admin's "Revoke" action); and nothing else to undo."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from qualification.errors import AttemptRefused
from qualification.models import Grant, QualificationTest
from qualification.selectors import worker_grant_scores
from qualification.services import grant_qualification, revoke_grant, start_attempt
from qualification.services_bulk import revoke_grants
from tests.factories import UserFactory, WorkerFactory
from tests.qualification.conftest import OPS, T0
from workforce.audit import CANONICAL_FIELDS, Actor, verify_audit_chain
from workforce.models import AuditEvent, Worker

pytestmark = pytest.mark.django_db
MakeTest = Callable[..., QualificationTest]
EVENT_FIELDS = [name for name in CANONICAL_FIELDS if name != "created_at"]  # the time of writing differs
LONG_REASON = "Spot check failed: " + "x" * 300  # longer than the row's 255 characters


class _Undo(Exception):
    pass


def _outcome(revoke: Callable[[], object]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The grant rows and the new audit events after ``revoke``, which is then rolled back."""
    last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    try:
        with transaction.atomic():
            revoke()
            assert verify_audit_chain() is None
            rows = list(Grant.objects.order_by("pk").values())
            events = list(AuditEvent.objects.filter(id__gt=last).order_by("id").values(*EVENT_FIELDS))
            raise _Undo
    except _Undo:
        pass
    return rows, events


def _grants(tests: list[QualificationTest], workers: list[Worker]) -> list[Grant]:
    return [
        grant_qualification(worker=w, test=t, score=70 + n, actor=OPS, now=T0)
        for n, (t, w) in enumerate((t, w) for t in tests for w in workers)
    ]


def test_revoking_grants_together_leaves_the_same_rows_and_events_as_one_by_one(make_test: MakeTest) -> None:
    tests = [make_test(name="Sentiment"), make_test(name="Colours")]
    grants = _grants(tests, [WorkerFactory() for _ in range(3)])
    revoke_grant(grant=grants[4], actor=Actor.system("earlier"), reason="revoked before", now=T0)
    chosen, untouched = grants[:5], grants[5]
    staff = Actor.from_user(UserFactory(username="ops-lead"))
    when = T0 + timedelta(days=2, microseconds=654321)

    def one_by_one() -> None:
        for grant in Grant.objects.filter(pk__in=[g.pk for g in chosen], revoked_at__isnull=True).order_by("pk"):
            revoke_grant(grant=grant, actor=staff, reason=LONG_REASON, now=when)

    def together() -> None:
        revoked = revoke_grants(
            grants=Grant.objects.filter(pk__in=[g.pk for g in chosen]), actor=staff, reason=LONG_REASON, now=when
        )
        assert [g.pk for g in revoked] == [g.pk for g in chosen[:4]]
        assert all(g.revoked_at == when and g.revoked_reason == LONG_REASON[:255] for g in revoked)

    single_rows, single_events = _outcome(one_by_one)
    bulk_rows, bulk_events = _outcome(together)
    assert bulk_rows == single_rows
    assert bulk_events == single_events
    assert len(bulk_events) == 4 and bulk_events[0]["reason"] == LONG_REASON
    assert bulk_events[0]["after"]["worker"] == grants[0].worker_id
    assert next(r for r in bulk_rows if r["id"] == untouched.pk)["revoked_at"] is None


def test_a_revoked_grant_no_longer_qualifies_and_the_worker_may_retake_the_test(make_test: MakeTest) -> None:
    test = make_test()
    worker = WorkerFactory()
    grant_qualification(worker=worker, test=test, score=100, actor=OPS, now=T0)
    assert test.pk in worker_grant_scores(worker)
    with pytest.raises(AttemptRefused, match="already passed"):
        start_attempt(test=test, worker=worker, now=T0 + timedelta(minutes=1))
    assert len(revoke_grants(grants=Grant.objects.filter(worker=worker), actor=OPS, reason="spot check")) == 1
    assert worker_grant_scores(worker) == {}
    assert start_attempt(test=test, worker=worker, now=T0 + timedelta(minutes=2)).number == 1
    assert revoke_grants(grants=Grant.objects.filter(worker=worker), actor=OPS, reason="again") == []
    assert AuditEvent.objects.filter(action="qualification.revoked").count() == 1


def _revoke_queries(test: QualificationTest, n: int) -> int:
    workers = [WorkerFactory() for _ in range(n)]
    grants = Grant.objects.bulk_create(
        Grant(worker=w, test=test, family=test, version=1, score=80.0, granted_at=T0) for w in workers
    )
    with CaptureQueriesContext(connection) as ctx:
        assert len(revoke_grants(grants=grants, actor=OPS, reason="r")) == n
    return len(ctx.captured_queries)


def test_the_service_costs_the_same_queries_for_3_or_40_grants(make_test: MakeTest) -> None:
    test = make_test()
    # (SQLite inserts audit events in batches of 76: up to there the count is the same for any number)
    assert _revoke_queries(test, 3) == _revoke_queries(test, 40) <= 10


def test_the_admin_action_revokes_every_selected_grant_in_a_fixed_number_of_queries(make_test: MakeTest) -> None:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    url = reverse("admin:qualification_grant_changelist")
    client.get(url)
    counts = []
    for n, name in ((3, "Small"), (40, "Large")):
        test = make_test(name=name)
        grants = Grant.objects.bulk_create(
            Grant(worker=WorkerFactory(), test=test, family=test, version=1, score=80.0, granted_at=T0)
            for _ in range(n)
        )
        with CaptureQueriesContext(connection) as ctx:
            response = client.post(url, {"action": "revoke", "_selected_action": [g.pk for g in grants]})
        assert response.status_code == 302
        assert f"Revoked {n} qualification(s)." in [str(m) for m in get_messages(response.wsgi_request)]
        counts.append(len(ctx.captured_queries))
        events = AuditEvent.objects.filter(action="qualification.revoked", after__test=test.pk)
        assert sorted(int(pk) for pk in events.values_list("object_id", flat=True)) == sorted(g.pk for g in grants)
        assert set(events.values_list("reason", flat=True)) == {"Revoked in the admin."}
        assert not Grant.objects.filter(test=test, revoked_at__isnull=True).exists()
    assert counts[0] == counts[1]
