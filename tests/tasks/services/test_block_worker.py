"""Blocking a worker returns only work that is still unreviewed and ours to hand out again."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.db import connections, transaction

from tasks.models import Assignment, AssignmentState, CostEntry, Hit, Job, JobBlock
from tasks.services.budget import job_spent
from tasks.services.collection import submit_assignment
from tasks.services.external_work import ExternalAssignment, record_external_assignments
from tasks.services.pool import assign_next_hit
from tasks.services.quality import block_worker
from tasks.services.review import approve_assignment
from tests.conftest import SYSTEM
from tests.factories import ItemFactory, JobFactory
from workforce.models import AuditEvent, Marketplace, Worker


def _answer(job: Job, worker: Worker) -> Assignment:
    assignment = assign_next_hit(job=job, worker=worker)
    submit_assignment(assignment=assignment, worker=worker, answers={assignment.hit.items.get().pk: "pos"})
    return Assignment.objects.get(pk=assignment.pk)


@pytest.mark.django_db
def test_blocking_returns_submitted_pool_work_once(make_published_job: Any, make_worker: Any) -> None:
    job = make_published_job(items=2, redundancy=1)
    worker = make_worker()
    first = _answer(job, worker)
    assert block_worker(job=job, worker=worker, actor=SYSTEM, reason="spam") is not None
    assert block_worker(job=job, worker=worker, actor=SYSTEM, reason="spam") is None
    first.refresh_from_db()
    hit = Hit.objects.get(pk=first.hit_id)
    assert first.state == AssignmentState.RETURNED
    assert (hit.assignments_submitted, hit.slots_taken) == (0, 0)
    assert JobBlock.objects.filter(job=job, worker=worker).count() == 1
    event = AuditEvent.objects.get(action="worker.blocked_from_job")
    assert event.after["returned_assignments"] == 1


@pytest.mark.django_db
def test_remote_work_stays_submitted_for_review() -> None:
    """MTurk holds the slot of a submitted assignment; returning it here would only be undone by collect."""
    job = JobFactory(redundancy=2)
    ItemFactory(job=job, external_id="i1")
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    record = ExternalAssignment("A1", "H1", "W1", {"i1": "pos"}, AssignmentState.SUBMITTED, at, at)
    record_external_assignments(job=job, marketplace=Marketplace.MTURK, records=[record], actor=SYSTEM)
    worker = Worker.objects.get(external_id="W1")
    block_worker(job=job, worker=worker, actor=SYSTEM, reason="spam")
    assignment = Assignment.objects.get(external_id="A1")
    assert assignment.state == AssignmentState.SUBMITTED
    assert Hit.objects.get(pk=assignment.hit_id).assignments_submitted == 1
    again = record_external_assignments(job=job, marketplace=Marketplace.MTURK, records=[record], actor=SYSTEM)
    assert again.assignments_updated == 0


@pytest.mark.postgres
@pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs PostgreSQL: two transactions racing on row locks")
@pytest.mark.django_db(transaction=True)
def test_an_approval_committing_during_a_block_keeps_its_assignment(make_published_job: Any, make_worker: Any) -> None:
    """The approval holds the row while the block waits for it: once it commits, the block must not turn
    the paid assignment into returned work and reopen its Hit for a third, paid, answer."""
    job = make_published_job(items=1, redundancy=2, reward=Decimal("0.50"), budget_cap=Decimal("1.00"))
    blocked, other = make_worker(), make_worker()
    paid, _ = _answer(job, blocked), _answer(job, other)
    approving, commit = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def reviewer() -> None:
        try:
            with transaction.atomic():
                approve_assignment(assignment=Assignment.objects.get(pk=paid.pk), actor=SYSTEM)
                approving.set()
                commit.wait(10)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    def policy() -> None:
        try:
            approving.wait(10)
            with transaction.atomic():  # as inside a submission, where the gold policy blocks
                block_worker(job=Job.objects.get(pk=job.pk), worker=blocked, actor=SYSTEM, reason="policy")
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=reviewer), threading.Thread(target=policy)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # the block is now waiting on the approved row's lock
    commit.set()
    for thread in threads:
        thread.join()
    assert not errors, errors
    paid.refresh_from_db()
    hit = Hit.objects.get(pk=paid.hit_id)
    assert paid.state == AssignmentState.APPROVED
    assert hit.assignments_submitted == 2
    assert JobBlock.objects.filter(job=job, worker=blocked).exists()
    job.refresh_from_db()
    assert job_spent(job) <= job.budget_cap
    assert CostEntry.objects.filter(assignment_id=paid.pk).count() == 1
