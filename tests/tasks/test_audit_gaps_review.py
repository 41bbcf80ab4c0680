"""Audit gaps found by review: a completed job reopened for more answers records its state before and after,
and cancelling a job or blocking a worker records what happened to each assignment it touched (one batched
write, whatever the number of assignments)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tasks.models import Assignment, AssignmentState, Job, JobState
from tasks.services import extra_answers
from tasks.services.adaptive import allocate_adaptive_answers
from tasks.services.more_answers import request_more_answers
from tasks.services.pool import assign_next_hit
from tasks.services.publishing import cancel_job
from tasks.services.quality import block_worker
from tests.factories import WorkerFactory
from tests.tasks.finance_helpers import submit_work
from tests.tasks.services.mturk_helpers import published_mturk_job
from tests.tasks.services.test_adaptive import _publish, _run_crowd
from workforce.audit import Actor, seal_all_audit_events
from workforce.marketplaces.mturk import MTurkMarketplace
from workforce.models import AuditEvent, Worker

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("audit review")
D = Decimal


def _events(action: str, **filters: Any) -> list[AuditEvent]:
    seal_all_audit_events()
    return list(AuditEvent.objects.filter(action=action, **filters).order_by("id"))


# --- 1: a completed job reopened for more answers records the job's state change ------------------------


def test_more_answers_on_a_completed_pool_job_record_it_went_from_completed_to_published(
    make_published_job: Any, make_worker: Any
) -> None:
    job = make_published_job(items=1, redundancy=1, reward=D("0.05"), budget_cap=D("0.10"))
    submit_work(job, make_worker())
    assert Job.objects.get(pk=job.pk).state == JobState.COMPLETED
    assert request_more_answers(job=job, actor=ACTOR).hits == 1
    [event] = _events("job.more_answers_requested", object_id=str(job.pk))
    assert event.before == {"state": JobState.COMPLETED.value}
    assert event.after["state"] == JobState.PUBLISHED.value
    assert event.after["hits"] == 1 and event.after["extra"] == 1
    assert (event.actor_kind, event.actor_label) == ("system", "audit review")


def test_more_answers_on_a_running_job_record_that_it_stayed_published(make_published_job: Any) -> None:
    job = make_published_job(items=2, redundancy=1, reward=D("0.05"), budget_cap=D("1.00"))
    assert request_more_answers(job=job, actor=ACTOR).hits == 2
    [event] = _events("job.more_answers_requested", object_id=str(job.pk))
    assert (event.before["state"], event.after["state"]) == (JobState.PUBLISHED.value, JobState.PUBLISHED.value)


def test_more_answers_on_a_completed_mturk_job_record_it_went_from_completed_to_published(
    mturk: MTurkMarketplace, standin: Any
) -> None:
    job = published_mturk_job(mturk, 2, redundancy=1, budget_cap=D("1.00"))
    Job.objects.filter(pk=job.pk).update(state=JobState.COMPLETED)
    result = request_more_answers(job=Job.objects.get(pk=job.pk), actor=ACTOR, extra=1, connector=mturk)
    assert result.hits == 2
    assert Job.objects.get(pk=job.pk).state == JobState.PUBLISHED
    [event] = _events("job.more_answers_requested", object_id=str(job.pk))
    assert event.before == {"state": JobState.COMPLETED.value}
    assert event.after["state"] == JobState.PUBLISHED.value
    assert (event.after["hits"], event.after["marketplace"]) == (2, "mturk")


def test_an_mturk_reopen_and_its_event_commit_together(mturk: MTurkMarketplace, standin: Any) -> None:
    """No state change without its event: when the event cannot be written, the job stays completed."""
    job = published_mturk_job(mturk, 1, redundancy=1, budget_cap=D("1.00"))
    Job.objects.filter(pk=job.pk).update(state=JobState.COMPLETED)
    with (
        mock.patch.object(extra_answers, "record_audit_event", side_effect=RuntimeError("audit down")),
        pytest.raises(RuntimeError),
    ):
        request_more_answers(job=Job.objects.get(pk=job.pk), actor=ACTOR, extra=1, connector=mturk)
    assert Job.objects.get(pk=job.pk).state == JobState.COMPLETED


def test_an_adaptive_pass_that_reopens_a_completed_job_records_its_state_before_and_after(make_worker: Any) -> None:
    job = _publish(0, 2, budget_cap=D("0.25"))  # 4 answers reserved at publish, room for 1 more
    workers = [make_worker() for _ in range(2)]
    split = list(job.items.order_by("external_id"))[1]
    _run_crowd(job, workers, answer=lambda item, index: "neg" if item == split and index == 1 else "pos")
    assert Job.objects.get(pk=job.pk).state == JobState.COMPLETED
    assert allocate_adaptive_answers(job=Job.objects.get(pk=job.pk)) == 1
    [event] = _events("job.adaptive_answers_requested", object_id=str(job.pk))
    assert event.before == {"state": JobState.COMPLETED.value}
    assert event.after["state"] == JobState.PUBLISHED.value
    assert event.after["reopened_job"] is True


# --- 2: cancelling a job and blocking a worker record each assignment they change -----------------------


def _job_with_leases(make_published_job: Any, leases: int) -> tuple[Job, list[Assignment]]:
    job = make_published_job(items=leases, redundancy=1)
    return job, [assign_next_hit(job=job, worker=WorkerFactory()) for _ in range(leases)]


def test_cancelling_a_job_records_each_lease_it_ends(make_published_job: Any) -> None:
    job, leases = _job_with_leases(make_published_job, 3)
    cancel_job(job=job, actor=ACTOR, reason="wrong labels")
    assert set(Assignment.objects.filter(job=job).values_list("state", flat=True)) == {AssignmentState.EXPIRED}
    events = _events("assignment.expired", object_type="assignment")
    assert sorted(e.object_id for e in events) == sorted(str(a.pk) for a in leases)
    for event in events:
        assert (event.actor_kind, event.actor_label) == ("system", "audit review")
        assert event.before == {"state": AssignmentState.ACCEPTED.value}
        assert event.after == {"state": AssignmentState.EXPIRED.value}
        assert "cancelled" in event.reason


@pytest.mark.parametrize("first", [3, 30])
def test_cancelling_a_job_costs_the_same_queries_for_3_or_30_leases(make_published_job: Any, first: int) -> None:
    counts = {}
    for n in (first, 33 - first):
        job, _ = _job_with_leases(make_published_job, n)
        with CaptureQueriesContext(connection) as queries:
            cancel_job(job=job, actor=ACTOR)
        counts[n] = len(queries)
    assert counts[3] == counts[30], counts
    assert len(_events("assignment.expired", object_type="assignment")) == 33


def _blocked_worker_with_work(make_published_job: Any, submitted: int) -> tuple[Job, Worker, list[int], int]:
    """A worker with ``submitted`` answers on a job and a lease on its last Hit."""
    job = make_published_job(items=submitted + 1, redundancy=1)
    worker = WorkerFactory()
    done = [submit_work(job, worker).pk for _ in range(submitted)]
    return job, worker, done, assign_next_hit(job=job, worker=worker).pk


def test_blocking_a_worker_records_each_returned_answer_and_ended_lease(make_published_job: Any) -> None:
    job, worker, done, lease = _blocked_worker_with_work(make_published_job, 3)
    block_worker(job=job, worker=worker, actor=ACTOR, reason="spam")
    returned = _events("assignment.returned", object_type="assignment")
    assert sorted(e.object_id for e in returned) == sorted(str(pk) for pk in done)
    for event in returned:
        assert (event.actor_kind, event.actor_label) == ("system", "audit review")
        assert event.before == {"state": AssignmentState.SUBMITTED.value}
        assert event.after == {"state": AssignmentState.RETURNED.value}
        assert "blocked" in event.reason
    [ended] = _events("assignment.expired", object_type="assignment")
    assert ended.object_id == str(lease)
    assert (ended.actor_label, ended.before, ended.after) == (
        "audit review",
        {"state": AssignmentState.ACCEPTED.value},
        {"state": AssignmentState.EXPIRED.value},
    )
    assert "blocked" in ended.reason
    assert Assignment.objects.get(pk=lease).state == AssignmentState.EXPIRED


def test_blocking_a_worker_on_a_completed_job_records_the_jobs_reopening(
    make_published_job: Any, make_worker: Any
) -> None:
    job = make_published_job(items=1, redundancy=1)
    worker = make_worker()
    submit_work(job, worker)
    assert Job.objects.get(pk=job.pk).state == JobState.COMPLETED
    block_worker(job=job, worker=worker, actor=ACTOR, reason="spam")
    assert Job.objects.get(pk=job.pk).state == JobState.PUBLISHED
    [event] = _events("worker.blocked_from_job", object_id=str(worker.pk))
    assert event.before["job_state"] == JobState.COMPLETED.value
    assert event.after["job_state"] == JobState.PUBLISHED.value


@pytest.mark.parametrize("first", [3, 30])
def test_blocking_a_worker_costs_the_same_queries_for_3_or_30_assignments(make_published_job: Any, first: int) -> None:
    counts = {}
    for n in (first, 33 - first):
        job, worker, _, _ = _blocked_worker_with_work(make_published_job, n)
        with CaptureQueriesContext(connection) as queries:
            block_worker(job=job, worker=worker, actor=ACTOR, reason="spam")
        counts[n] = len(queries)
    assert counts[3] == counts[30], counts
    assert len(_events("assignment.returned", object_type="assignment")) == 33
