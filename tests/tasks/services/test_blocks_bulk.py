"""Lifting many job blocks at once: the same rows and audit events as lifting them one by one, in a number of
queries that does not grow with the number of blocks (the admin's "Lift selected" action)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tasks.models import Job, JobBlock
from tasks.services.blocks import lift_job_block, lift_job_blocks
from tasks.services.errors import ServiceError
from tests.factories import JobFactory, UserFactory, WorkerFactory
from workforce.audit import CANONICAL_FIELDS, Actor, verify_audit_chain
from workforce.models import AuditEvent, Worker

pytestmark = pytest.mark.django_db

NOW = datetime(2025, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
EVENT_FIELDS = [name for name in CANONICAL_FIELDS if name != "created_at"]  # the time of writing differs


class _Undo(Exception):
    pass


def _outcome(lift: Callable[[], object]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The block rows and the new audit events after ``lift``, which is then rolled back."""
    last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    try:
        with transaction.atomic():
            lift()
            assert verify_audit_chain() is None
            rows = list(JobBlock.objects.order_by("pk").values())
            events = list(AuditEvent.objects.filter(id__gt=last).order_by("id").values(*EVENT_FIELDS))
            raise _Undo
    except _Undo:
        pass
    return rows, events


def _blocks(jobs: list[Job], workers: list[Worker]) -> list[JobBlock]:
    return [
        JobBlock.objects.create(
            job=job, worker=worker, reason=f"accuracy {n} below the bar", evidence={"n": n}, created_at=NOW
        )
        for n, (job, worker) in enumerate((j, w) for j in jobs for w in workers)
    ]


def test_lifting_blocks_together_leaves_the_same_rows_and_events_as_one_by_one() -> None:
    jobs, workers = [JobFactory(), JobFactory()], [WorkerFactory() for _ in range(3)]
    blocks = _blocks(jobs, workers)
    lift_job_block(block=blocks[4], actor=Actor.system("earlier"), reason="lifted before")
    untouched = blocks[5]
    chosen = blocks[:5]
    staff = Actor.from_user(UserFactory(username="ops-lead"))

    def one_by_one() -> None:
        for block in JobBlock.objects.filter(pk__in=[b.pk for b in chosen], lifted_at__isnull=True).order_by("pk"):
            lift_job_block(block=block, actor=staff, reason="  Lifted in the admin. ", now=NOW)

    def together() -> None:
        lifted = lift_job_blocks(
            blocks=JobBlock.objects.filter(pk__in=[b.pk for b in chosen]),
            actor=staff,
            reason="  Lifted in the admin. ",
            now=NOW,
        )
        assert [b.pk for b in lifted] == [b.pk for b in chosen[:4]]
        assert all(b.lifted_at == NOW for b in lifted)

    single_rows, single_events = _outcome(one_by_one)
    bulk_rows, bulk_events = _outcome(together)
    assert bulk_rows == single_rows
    assert bulk_events == single_events
    assert len(bulk_events) == 4 and bulk_events[0]["reason"] == "Lifted in the admin."
    assert bulk_events[0]["before"] == {"job": jobs[0].pk, "blocked": True, "block_reason": "accuracy 0 below the bar"}
    assert next(r for r in bulk_rows if r["id"] == untouched.pk)["lifted_at"] is None


def test_blocks_already_lifted_are_skipped_and_a_reason_is_required() -> None:
    blocks = _blocks([JobFactory()], [WorkerFactory(), WorkerFactory()])
    with pytest.raises(ServiceError, match="reason"):
        lift_job_blocks(blocks=blocks, actor=Actor.system("t"), reason="  ")
    assert [b.pk for b in lift_job_blocks(blocks=blocks, actor=Actor.system("t"), reason="ok")] == [
        b.pk for b in blocks
    ]
    assert lift_job_blocks(blocks=blocks, actor=Actor.system("t"), reason="again") == []
    assert AuditEvent.objects.filter(action="worker.unblocked_from_job").count() == 2


def _lift_queries(n: int) -> int:
    job = JobFactory()
    JobBlock.objects.bulk_create(
        JobBlock(job=job, worker=w, reason="x", created_at=NOW) for w in [WorkerFactory() for _ in range(n)]
    )
    with CaptureQueriesContext(connection) as ctx:
        assert len(lift_job_blocks(blocks=JobBlock.objects.filter(job=job), actor=Actor.system("t"), reason="r")) == n
    assert not JobBlock.objects.filter(job=job, lifted_at__isnull=True).exists()
    return len(ctx.captured_queries)


def test_the_service_costs_the_same_queries_for_3_or_40_blocks() -> None:
    _lift_queries(1)  # the audit chain's head row is created on first use
    # (SQLite inserts audit events in batches of 76: up to there the count is the same for any number)
    assert _lift_queries(3) == _lift_queries(40) <= 10


def test_the_admin_action_lifts_every_selected_block_in_a_fixed_number_of_queries(
    ops_client: Client,
) -> None:
    url = reverse("admin:tasks_jobblock_changelist")
    ops_client.get(url)
    counts = []
    for n in (3, 40):
        job = JobFactory()
        blocks = JobBlock.objects.bulk_create(
            JobBlock(job=job, worker=w, reason="x", created_at=NOW) for w in [WorkerFactory() for _ in range(n)]
        )
        with CaptureQueriesContext(connection) as ctx:
            response = ops_client.post(url, {"action": "lift_selected", "_selected_action": [b.pk for b in blocks]})
        assert response.status_code == 302
        assert f"Lifted {n} block(s)." in [str(m) for m in get_messages(response.wsgi_request)]
        counts.append(len(ctx.captured_queries))
        events = AuditEvent.objects.filter(action="worker.unblocked_from_job", after__job=job.pk)
        assert sorted(int(pk) for pk in events.values_list("object_id", flat=True)) == sorted(
            b.worker_id for b in blocks
        )
        assert set(events.values_list("actor_label", flat=True)) == {"ops"}
    assert counts[0] == counts[1]
    assert not JobBlock.objects.filter(lifted_at__isnull=True).exists()
