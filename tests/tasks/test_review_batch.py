"""Approving a page of assignments from the admin is set-based: the same handful of queries for 3 rows as for
20, one ledger row and one chained audit event per assignment, and a sentence for rows that were not waiting."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tasks.models import Assignment, AssignmentState, BudgetReservation, CostEntry, Job
from tasks.services.budget import job_spent
from tasks.services.review import approve_assignment
from tests.conftest import SYSTEM
from tests.tasks.finance_helpers import submit_work
from workforce.audit import QueuedEvent, record_audit_events, verify_audit_chain
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
URL = reverse("admin:tasks_assignment_changelist")


def _approve_page(client: Client, ids: list[int]) -> tuple[int, Any]:
    with CaptureQueriesContext(connection) as queries:
        response = client.post(URL, {"action": "approve_selected", "_selected_action": ids})
    return len(queries), response


def _submitted_page(make_published_job: Any, make_worker: Any, n: int) -> tuple[Job, list[int]]:
    """A job whose ``n`` assignments one worker has submitted (within the job's budget), and their ids."""
    job = make_published_job(items=n, redundancy=1, reward=Decimal("0.05"), budget_cap=Decimal("5.00"))
    worker = make_worker()
    return job, [submit_work(job, worker).pk for _ in range(n)]


def test_approving_a_page_costs_the_same_queries_for_3_rows_as_for_20(
    reviewer: Any, login_client: Any, make_published_job, make_worker
) -> None:
    client = login_client(reviewer)
    counts = []
    for n in (3, 20):
        job, ids = _submitted_page(make_published_job, make_worker, n)
        count, response = _approve_page(client, ids)
        assert response.status_code == 302
        assert set(Assignment.objects.filter(pk__in=ids).values_list("state", flat=True)) == {AssignmentState.APPROVED}
        assert CostEntry.objects.filter(assignment_id__in=ids).count() == n
        assert AuditEvent.objects.filter(action="assignment.approved", object_id__in=[str(i) for i in ids]).count() == n
        assert job_spent(job) == Decimal("0.05") * n
        counts.append(count)
    assert counts[0] == counts[1], counts  # 40 and 40; one approval per row took 82 and 456
    assert verify_audit_chain() is None


def test_rows_that_were_not_waiting_for_review_are_left_with_a_sentence(
    reviewer: Any, login_client: Any, make_published_job, make_worker
) -> None:
    job = make_published_job(items=2, redundancy=1, budget_cap=Decimal("1.00"))
    worker = make_worker()
    done, waiting = submit_work(job, worker), submit_work(job, worker)
    approve_assignment(assignment=done, actor=SYSTEM)
    _, response = _approve_page(login_client(reviewer), [done.pk, waiting.pk])
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert "Approved 1 assignment(s)." in said
    assert any(s.startswith("1 of the selected assignments were not waiting for review") for s in said), said
    assert CostEntry.objects.filter(assignment=done).count() == 1  # paid once, not twice


def test_a_batch_of_events_is_chained_in_order_after_what_was_there() -> None:
    record_audit_events([QueuedEvent(SYSTEM, "test.first", "job", 1)])
    batch = record_audit_events([QueuedEvent(SYSTEM, f"test.{n}", "job", n) for n in range(5)])
    chain = list(AuditEvent.objects.order_by("pk").values_list("action", "previous_hash", "hash"))
    assert [a for a, _, _ in chain] == ["test.first", *(f"test.{n}" for n in range(5))]
    assert all(chain[i + 1][1] == chain[i][2] for i in range(len(chain) - 1))
    assert [e.pk for e in batch] == list(AuditEvent.objects.order_by("pk").values_list("pk", flat=True))[1:]
    assert verify_audit_chain() is None


def _reject_page(client: Client, ids: list[int], feedback: str) -> tuple[int, Any]:
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            URL, {"action": "reject_selected", "_selected_action": ids, "apply": "1", "feedback": feedback}
        )
    return len(queries), response


def test_rejecting_a_page_releases_each_reservation_once_in_the_same_queries_for_3_rows_as_for_20(
    reviewer: Any, login_client: Any, make_published_job, make_worker
) -> None:
    client = login_client(reviewer)
    counts = []
    for n in (3, 20):
        job, ids = _submitted_page(make_published_job, make_worker, n)
        reserved = Job.objects.get(pk=job.pk).budget_reserved
        count, response = _reject_page(client, ids, "Every answer is the same label: see rule 2.")
        assert response.status_code == 302
        assert set(Assignment.objects.filter(pk__in=ids).values_list("state", flat=True)) == {AssignmentState.REJECTED}
        releases = BudgetReservation.objects.filter(job=job, amount__lt=0)
        assert sorted(releases.values_list("key", flat=True)) == sorted(f"assignment:{pk}:release" for pk in ids)
        assert Job.objects.get(pk=job.pk).budget_reserved == reserved + sum(r.amount for r in releases)
        assert not CostEntry.objects.filter(assignment_id__in=ids).exists()
        rejected = AuditEvent.objects.filter(action="assignment.rejected", object_id__in=[str(i) for i in ids])
        assert {e.reason for e in rejected} == {"Every answer is the same label: see rule 2."} and rejected.count() == n
        counts.append(count)
        # a second try (the form sent twice) changes nothing and releases nothing more
        _reject_page(client, ids, "again")
        assert BudgetReservation.objects.filter(job=job, amount__lt=0).count() == n
    assert counts[0] == counts[1], counts  # 51 and 51; one rejection per row took 115 and 676
    assert verify_audit_chain() is None
