"""More answers are never asked for on a cancelled job: an adaptive allocation pass that read the job as
published before a cancel committed, and an ops request for more answers after it, reserve nothing and reopen
no Hit (the money would stay reserved on a job nothing settles again)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tasks.models import Hit, HitState, Item, Job, JobState
from tasks.services import adaptive
from tasks.services.errors import ServiceError
from tasks.services.extra_answers import request_more_answers
from tasks.services.publishing import cancel_job
from tests.tasks.services.test_adaptive import _publish, _run_crowd
from workforce.audit import Actor

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("test")


def _worked_short_budget_job(make_worker: Any) -> Job:
    """Two items with their minimum answers, one of them split, and budget room for one more answer; the
    job is published (its other work, not modelled here, is still open)."""
    job = _publish(0, 2, budget_cap=Decimal("0.25"))
    split = Item.objects.filter(job=job).order_by("external_id")[1]
    _run_crowd(job, [make_worker() for _ in range(2)], answer=lambda item, i: "neg" if item == split and i else "pos")
    Job.objects.filter(pk=job.pk).update(state=JobState.PUBLISHED, completed_at=None)
    return Job.objects.get(pk=job.pk)


def test_an_allocation_pass_that_a_cancel_overtakes_reopens_nothing(make_worker: Any, monkeypatch: Any) -> None:
    job = _worked_short_budget_job(make_worker)
    scored = adaptive.items_state
    after_cancel: list[Decimal] = []

    def cancel_while_scoring(*args: Any, **kwargs: Any) -> Any:
        cancelled = cancel_job(job=Job.objects.get(pk=job.pk), actor=ACTOR)  # between the pass's read and grant
        after_cancel.append(cancelled.budget_reserved)  # what the cancel left held for the work to review
        return scored(*args, **kwargs)

    monkeypatch.setattr(adaptive, "items_state", cancel_while_scoring)
    assert adaptive.allocate_adaptive_answers(job=job) == 0
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    assert set(Hit.objects.filter(job=job).values_list("state", flat=True)) == {HitState.COMPLETE}
    assert after_cancel and job.budget_reserved == after_cancel[0]


def test_more_answers_on_a_cancelled_job_are_refused_and_nothing_is_reserved(make_worker: Any) -> None:
    job = _worked_short_budget_job(make_worker)
    cancel_job(job=job, actor=ACTOR)
    job.refresh_from_db()
    reserved = job.budget_reserved
    hit = Hit.objects.filter(job=job).first()
    assert hit is not None
    with pytest.raises(ServiceError, match="cancelled"):
        request_more_answers(job=job, hit_ids=[hit.pk], extra=1, actor=ACTOR)
    job.refresh_from_db()
    assert job.budget_reserved == reserved
    assert Hit.objects.get(pk=hit.pk).state == HitState.COMPLETE
