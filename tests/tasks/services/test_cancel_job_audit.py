"""Cancelling a job audits every Hit it closes (before and after), in one batch with the leases it ends."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tasks.models import Hit, HitState, Job
from tasks.services.pool import assign_next_hit
from tasks.services.publishing import cancel_job
from workforce.audit import Actor, seal_all_audit_events, verify_audit_chain
from workforce.models import AuditEvent, Worker

pytestmark = pytest.mark.django_db


def test_cancelling_a_job_writes_one_event_per_hit_it_closes_with_its_state_before(
    actor: Actor, make_published_job: Callable[..., Job], make_worker: Callable[..., Worker]
) -> None:
    job = make_published_job(items=5, items_per_hit=1)
    lease = assign_next_hit(job=job, worker=make_worker())
    hits = list(Hit.objects.filter(job=job).order_by("pk").values_list("pk", flat=True))
    complete, already_cancelled, full = hits[-1], hits[-2], hits[-3]
    Hit.objects.filter(pk=complete).update(state=HitState.COMPLETE)
    Hit.objects.filter(pk=already_cancelled).update(state=HitState.CANCELLED)
    Hit.objects.filter(pk=full).update(state=HitState.FULL)
    states_before = dict(Hit.objects.filter(job=job).values_list("pk", "state"))

    cancel_job(job=job, actor=actor, reason="enough labels")
    seal_all_audit_events()

    closed = [pk for pk in hits if pk not in (complete, already_cancelled)]
    events = list(AuditEvent.objects.filter(action="hit.cancelled").order_by("id"))
    assert [e.object_id for e in events] == [str(pk) for pk in closed]
    for event in events:
        assert event.object_type == "hit" and event.actor_label == actor.label
        assert event.before == {"state": states_before[int(event.object_id)]}
        assert event.after == {"state": "cancelled"}
        assert event.reason == "The job was cancelled: enough labels"
    assert events[closed.index(full)].before == {"state": "full"}
    # After the job's own event, before the lease's, and the chain still verifies.
    order = list(AuditEvent.objects.filter(action__in=["job.cancelled", "hit.cancelled", "assignment.expired"]))
    assert [e.action for e in order] == ["job.cancelled"] + ["hit.cancelled"] * len(closed) + ["assignment.expired"]
    assert order[-1].object_id == str(lease.pk)
    assert Hit.objects.get(pk=complete).state == HitState.COMPLETE
    assert verify_audit_chain() is None


def _queries_to_cancel(job: Job, actor: Actor) -> int:
    with CaptureQueriesContext(connection) as queries:
        cancel_job(job=job, actor=actor)
    return len(queries)


def test_the_hit_events_cost_no_query_per_hit(actor: Actor, make_published_job: Callable[..., Job]) -> None:
    small = _queries_to_cancel(make_published_job(items=2, items_per_hit=1), actor)
    large = _queries_to_cancel(make_published_job(items=40, items_per_hit=1), actor)
    assert large == small
    seal_all_audit_events()
    assert AuditEvent.objects.filter(action="hit.cancelled").count() == 42
