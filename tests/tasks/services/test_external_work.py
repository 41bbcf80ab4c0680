"""Work from another marketplace is upserted on its ids: once, with statuses kept, bad records reported."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tasks.models import (
    Answer,
    Assignment,
    AssignmentFlag,
    AssignmentState,
    GoldGrade,
    Hit,
    HitState,
    Job,
    WorkerJobScore,
)
from tasks.services.external_work import ExternalAssignment, record_external_assignments
from tests.factories import ItemFactory, JobFactory
from workforce.audit import Actor
from workforce.models import AuditEvent, Worker

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("test import")


def _records() -> list[ExternalAssignment]:
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    return [
        ExternalAssignment("A1", "H1", "W1", {"i1": "pos"}, AssignmentState.APPROVED, at, at, at, Decimal("0.10")),
        ExternalAssignment("A2", "H1", "W2", {"i1": "neg"}, AssignmentState.SUBMITTED, at, at),
        ExternalAssignment("A3", "H2", "W1", {"i2": "neutral"}, AssignmentState.REJECTED, at, at, at),
    ]


def test_it_records_workers_hits_assignments_and_answers_once() -> None:
    job = JobFactory(redundancy=2)
    ItemFactory(job=job, external_id="i1")
    ItemFactory(job=job, external_id="i2")
    first = record_external_assignments(job=job, marketplace="mturk", records=_records(), actor=ACTOR)
    assert (first.assignments_created, first.workers_created, first.hits_created, first.answers_created) == (3, 2, 2, 3)
    again = record_external_assignments(job=job, marketplace="mturk", records=_records(), actor=ACTOR)
    assert (again.assignments_created, again.assignments_unchanged, again.answers_created) == (0, 3, 0)
    assert Assignment.objects.count() == 3 and Answer.objects.count() == 3 and Worker.objects.count() == 2
    states = dict(Assignment.objects.values_list("external_id", "state"))
    assert states == {"A1": "approved", "A2": "submitted", "A3": "rejected"}
    assert Assignment.objects.get(external_id="A1").reward == Decimal("0.10")
    assert Assignment.objects.get(external_id="A2").reward == job.reward
    h1 = Hit.objects.get(external_id="H1")
    assert (h1.assignments_submitted, h1.slots_taken, h1.state) == (2, 2, HitState.COMPLETE)
    assert list(h1.items.values_list("external_id", flat=True)) == ["i1"]
    assert AuditEvent.objects.filter(action="assignments.recorded").count() == 1


def test_a_later_status_is_taken_but_a_reviewed_one_is_kept() -> None:
    job = JobFactory()
    ItemFactory(job=job, external_id="i1")
    ItemFactory(job=job, external_id="i2")
    record_external_assignments(job=job, marketplace="mturk", records=_records(), actor=ACTOR)
    at = datetime(2026, 5, 2, tzinfo=UTC)
    moved = [
        ExternalAssignment("A2", "H1", "W2", {"i1": "neg"}, AssignmentState.APPROVED, at, at, at),
        ExternalAssignment("A1", "H1", "W1", {"i1": "pos"}, AssignmentState.REJECTED, at, at, at),
    ]
    result = record_external_assignments(job=job, marketplace="mturk", records=moved, actor=ACTOR)
    assert (result.assignments_updated, result.assignments_unchanged) == (1, 1)
    states = dict(Assignment.objects.values_list("external_id", "state"))
    assert states["A2"] == "approved" and states["A1"] == "approved"


def test_it_reports_records_it_cannot_take_and_writes_nothing_for_them() -> None:
    job = JobFactory()
    ItemFactory(job=job, external_id="i1")
    bad = [
        ExternalAssignment("B1", "H9", "W1", {"nope": "pos"}),
        ExternalAssignment("B2", "H9", "W1", {"i1": "not-a-label"}),
        ExternalAssignment("B3", "H9", "W1", {}),
    ]
    result = record_external_assignments(job=job, marketplace="mturk", records=bad, actor=ACTOR)
    reasons = dict(result.skipped)
    assert "nope" in reasons["B1"] and "not-a-label" in reasons["B2"] and "no answer" in reasons["B3"]
    assert not Assignment.objects.exists() and not Hit.objects.exists() and not Worker.objects.exists()


def test_answers_to_gold_items_are_graded() -> None:
    job = JobFactory()
    ItemFactory(job=job, external_id="g1", is_gold=True, gold_answer="pos")
    records = [
        ExternalAssignment("G1", "HG", "W1", {"g1": "pos"}),
        ExternalAssignment("G2", "HG", "W2", {"g1": "neg"}),
    ]
    record_external_assignments(job=job, marketplace="groundtruth", records=records, actor=ACTOR)
    scores = dict(GoldGrade.objects.values_list("worker__external_id", "score"))
    assert scores == {"W1": 1.0, "W2": 0.0}


def test_work_whose_ids_belong_to_another_job_is_skipped_not_moved() -> None:
    first, second = JobFactory(), JobFactory()
    for job in (first, second):
        ItemFactory(job=job, external_id="i1")
        ItemFactory(job=job, external_id="i2")
    record_external_assignments(job=first, marketplace="mturk", records=_records(), actor=ACTOR)
    at = datetime(2026, 5, 1, tzinfo=UTC)
    again = [*_records(), ExternalAssignment("A9", "H1", "W9", {"i1": "pos"}, AssignmentState.SUBMITTED, at, at)]
    result = record_external_assignments(job=second, marketplace="mturk", records=again, actor=ACTOR)
    reasons = dict(result.skipped)
    assert reasons["A1"] == f"assignment A1 belongs to job {first.pk}"
    assert reasons["A9"] == f"HIT H1 belongs to job {first.pk}"
    assert result.assignments_created == 0
    assert not Assignment.objects.filter(job=second).exists() and not Hit.objects.filter(job=second).exists()


def _gold_batch(job: Job, n: int, workers: int) -> list[ExternalAssignment]:
    """``n`` assignments on ``n`` one-item gold HITs by ``workers`` workers; every third answer is wrong."""
    for k in range(n):
        ItemFactory(job=job, external_id=f"g{k}", is_gold=True, gold_answer="pos")
    return [
        ExternalAssignment(
            f"A{k}-{job.pk}", f"H{k}-{job.pk}", f"W{k % workers}", {f"g{k}": "neg" if k % 3 == 2 else "pos"}
        )
        for k in range(n)
    ]


def _recording_queries(n: int, workers: int, **job_fields: Any) -> tuple[Job, int]:
    job = JobFactory(**job_fields)
    records = _gold_batch(job, n, workers)
    with CaptureQueriesContext(connection) as captured:
        result = record_external_assignments(job=job, marketplace="mturk", records=records, actor=ACTOR)
    assert result.assignments_created == n
    return job, len(captured.captured_queries)


@pytest.mark.parametrize(
    "policies",
    [
        {},
        {"block_below_accuracy": 0.7, "block_after_gold": 1, "gold_miss_action": "flag"},
    ],
)
def test_grading_gold_costs_the_same_queries_for_4_or_60_assignments(policies: dict[str, Any]) -> None:
    _recording_queries(4, workers=2, **policies)  # the workers W0 and W1 exist from here on
    _, few = _recording_queries(4, workers=2, **policies)
    job, many = _recording_queries(60, workers=2, **policies)
    # Nothing per row; SQLite splits a bulk insert every 999 parameters (about 76 audit events), so 60 recorded
    # and 20 flagged events may take one more INSERT than 4 and 1 do.
    assert few <= many <= few + 1, f"{few} queries for 4 assignments, {many} for 60"
    scores = {s.worker.external_id: (s.gold_answers, s.gold_score) for s in WorkerJobScore.objects.filter(job=job)}
    assert scores == {"W0": (30, 20.0), "W1": (30, 20.0)}  # every third of each worker's answers is wrong
    assert GoldGrade.objects.filter(job=job).count() == 60


def test_a_wrong_gold_answer_is_flagged_once_per_assignment_in_a_batch() -> None:
    job = JobFactory(gold_miss_action="flag")
    record_external_assignments(job=job, marketplace="mturk", records=_gold_batch(job, 6, workers=3), actor=ACTOR)
    flagged = set(AssignmentFlag.objects.filter(job=job).values_list("assignment__external_id", flat=True))
    assert flagged == {f"A2-{job.pk}", f"A5-{job.pk}"}
    assert AuditEvent.objects.filter(action="assignment.flagged").count() == 2


def test_every_assignment_recorded_or_moved_on_gets_its_own_audit_event() -> None:
    """An imported assignment's History page shows where it came from and each state a later file gave it."""
    from workforce.audit import seal_all_audit_events

    job = JobFactory(redundancy=2)
    ItemFactory(job=job, external_id="i1")
    ItemFactory(job=job, external_id="i2")
    record_external_assignments(job=job, marketplace="mturk", records=_records(), actor=ACTOR, source="b1.csv")
    at = datetime(2026, 5, 2, 12, 0, tzinfo=UTC)
    later = [ExternalAssignment("A2", "H1", "W2", {"i1": "neg"}, AssignmentState.APPROVED, at, at, at)]
    record_external_assignments(job=job, marketplace="mturk", records=later, actor=ACTOR, source="b2.csv")
    seal_all_audit_events()
    a2 = Assignment.objects.get(external_id="A2")
    events = list(AuditEvent.objects.filter(object_type="assignment", object_id=str(a2.pk)).order_by("id"))
    assert [(e.action, e.before, e.after["state"], e.after["source"]) for e in events] == [
        ("assignment.recorded", {}, "submitted", "b1.csv"),
        ("assignment.state_recorded", {"state": "submitted"}, "approved", "b2.csv"),
    ]
    assert AuditEvent.objects.filter(action="assignment.recorded").count() == 3


def test_reviewed_history_that_missed_gold_is_flagged_not_rejected_on_a_rejecting_job() -> None:
    """Imported work a marketplace already approved (or rejected) cannot be rejected here: on a job that rejects
    missed gold it is flagged for a reviewer, and the import goes through."""
    job = JobFactory(gold_miss_action="reject")
    at = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    records = [
        ExternalAssignment(
            r.external_assignment_id, r.external_hit_id, r.external_worker_id, r.answers, state, at, at, at
        )
        for r, state in zip(
            _gold_batch(job, 6, workers=3), [AssignmentState.APPROVED] * 3 + [AssignmentState.REJECTED] * 3, strict=True
        )
    ]
    result = record_external_assignments(job=job, marketplace="groundtruth", records=records, actor=ACTOR)
    assert result.assignments_created == 6 and not result.skipped
    flagged = set(AssignmentFlag.objects.filter(job=job).values_list("assignment__external_id", flat=True))
    assert flagged == {f"A2-{job.pk}", f"A5-{job.pk}"}
    states = dict(Assignment.objects.filter(job=job).values_list("external_id", "state"))
    assert states[f"A2-{job.pk}"] == AssignmentState.APPROVED and states[f"A5-{job.pk}"] == AssignmentState.REJECTED
    assert not AuditEvent.objects.filter(action="assignment.rejected_for_missed_gold").exists()
