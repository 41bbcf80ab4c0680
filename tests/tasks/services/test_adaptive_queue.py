"""Adaptive redundancy's background passes: debounced per job, never lost, and swept periodically."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings as django_settings

from tasks import adaptive_tasks
from tasks.models import AdaptiveSkills, Answer, Hit, HitState, Job, JobState
from tasks.services import adaptive, adaptive_queue
from tasks.services.adaptive import sweep_adaptive_jobs
from tasks.services.adaptive_queue import (
    flush_adaptive_allocation,
    has_pending_allocation,
    release_adaptive_refit,
    request_adaptive_allocation,
    request_adaptive_refit,
)
from tests.tasks.services.test_adaptive import _publish, _run_crowd
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """What the queue hands to Celery (recorded instead of sent)."""
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(adaptive_queue, "_enqueue", lambda name, job_id: calls.append((name, job_id)))
    return calls


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The allocation passes that ran (the real pass, counted)."""
    ran: list[int] = []
    real = adaptive.allocate_adaptive_answers

    def counted(**kwargs: Any) -> int:
        ran.append(kwargs["job"].pk)
        return real(**kwargs)

    monkeypatch.setattr(adaptive, "allocate_adaptive_answers", counted)
    return ran


def test_requests_inside_the_window_queue_one_pass_and_stay_pending(
    settings: Any, queued: list[tuple[str, int]]
) -> None:
    settings.ADAPTIVE_ALLOCATION_DEBOUNCE_SECONDS = 3600
    job = _publish(0, 2)  # open Hits: nothing forces a pass before the window ends
    assert request_adaptive_allocation(job_id=job.pk) is True
    assert not has_pending_allocation(job.pk)
    assert request_adaptive_allocation(job_id=job.pk) is False
    assert request_adaptive_allocation(job_id=job.pk) is False
    assert has_pending_allocation(job.pk)  # held back, not dropped
    assert queued == [("allocate_adaptive_answers_task", job.pk)]
    assert flush_adaptive_allocation(job_id=job.pk) is False  # still inside the window, work still open
    Hit.objects.filter(job=job).update(state=HitState.COMPLETE)
    assert flush_adaptive_allocation(job_id=job.pk) is True  # no open work left: nothing else would come
    assert not has_pending_allocation(job.pk)
    assert queued == [("allocate_adaptive_answers_task", job.pk)] * 2
    assert flush_adaptive_allocation(job_id=job.pk, force=True) is False  # nothing pending


def test_a_refit_is_queued_once_until_it_finishes(queued: list[tuple[str, int]]) -> None:
    assert request_adaptive_refit(job_id=7) is True
    assert request_adaptive_refit(job_id=7) is False
    assert request_adaptive_refit(job_id=8) is True
    release_adaptive_refit(job_id=7)
    assert request_adaptive_refit(job_id=7) is True
    assert [job for _, job in queued] == [7, 8, 7]


def _short_budget_run(make_worker: Any, on_commit: Any, cap: str = "0.95") -> tuple[Job, int]:
    # 8 disputed items wanting 2 answers each (0.80 reserved at publish); a cap of 0.95 pays 3 extra answers.
    # Fewer than 20 answers in all: no re-fit changes the skills half-way.
    job = _publish(0, 8, budget_cap=Decimal(cap))
    submitted = _run_crowd(job, [make_worker() for _ in range(6)], on_commit=on_commit)
    job.refresh_from_db()
    return job, submitted


@pytest.mark.parametrize("debounce", [3600, 0])
def test_a_short_budget_still_gets_every_extra_answer_it_pays_for(
    debounce: int, settings: Any, make_worker: Any, passes: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    settings.ADAPTIVE_ALLOCATION_DEBOUNCE_SECONDS = debounce
    job, _ = _short_budget_run(make_worker, django_capture_on_commit_callbacks)
    assert sum(Hit.objects.filter(job=job).values_list("assignments_wanted", flat=True)) == 16 + 3
    assert Answer.objects.filter(job=job).count() == 16 + 3
    assert job.budget_reserved == Decimal("0.95") and job.state == JobState.COMPLETED
    assert set(Hit.objects.filter(job=job).values_list("state", flat=True)) == {HitState.COMPLETE}
    assert AuditEvent.objects.filter(action="job.adaptive_budget_exhausted", object_id=str(job.pk)).count() <= 1
    assert passes and set(passes) == {job.pk}


def test_the_debounce_runs_far_fewer_passes_than_hits_asking(
    settings: Any, make_worker: Any, passes: list[int], django_capture_on_commit_callbacks: Any
) -> None:
    # A cap paying 10 extra answers: every disputed Hit that completes asks for a pass while money is left.
    settings.ADAPTIVE_ALLOCATION_DEBOUNCE_SECONDS = 0
    first, submitted = _short_budget_run(make_worker, django_capture_on_commit_callbacks, cap="1.30")
    asked = len(passes)
    passes.clear()
    settings.ADAPTIVE_ALLOCATION_DEBOUNCE_SECONDS = 3600
    second, submitted_again = _short_budget_run(make_worker, django_capture_on_commit_callbacks, cap="1.30")
    for job, count in ((first, submitted), (second, submitted_again)):
        assert job.state == JobState.COMPLETED and count > 16  # extra answers were given in both runs
    # One window: the first request's pass, the re-fit's pass, and one each time the open work ran out.
    assert len(passes) * 2 < asked


def test_the_sweep_refits_grown_jobs_and_queues_held_back_passes(
    settings: Any, make_worker: Any, queued: list[tuple[str, int]]
) -> None:
    settings.ADAPTIVE_ALLOCATION_DEBOUNCE_SECONDS = 3600
    job = _publish(25, 0)
    _run_crowd(job, [make_worker()])  # one answer per item (the job stays published); on-commit hooks do not run
    assert queued == [] and not AdaptiveSkills.objects.filter(job=job).exists()
    assert sweep_adaptive_jobs() == (1, 0)  # 25 answers, never fitted: a re-fit is due
    assert queued == [("refit_adaptive_skills_task", job.pk)]
    adaptive_tasks.refit_adaptive_skills_task(job_id=job.pk)  # what the worker then runs
    assert AdaptiveSkills.objects.get(job=job).answers_at_fit == 25
    queued.clear()
    request_adaptive_allocation(job_id=job.pk)
    request_adaptive_allocation(job_id=job.pk)  # held back by the window
    assert sweep_adaptive_jobs() == (0, 1)
    assert queued == [("allocate_adaptive_answers_task", job.pk)] * 2
    assert sweep_adaptive_jobs() == (0, 0)


def test_the_sweep_is_on_the_beat_schedule() -> None:
    entry = django_settings.CELERY_BEAT_SCHEDULE["adaptive-sweep"]
    assert entry["task"] == adaptive_tasks.sweep_adaptive_jobs_task.name
