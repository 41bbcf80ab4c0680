"""Worker pages: training feedback on the last task and for an empty answer; the scores page's "waiting for
review" (hourly pay, and rejections for missed gold made at submit time)."""

from __future__ import annotations

import io
import random
import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tasks.models import Assignment, AssignmentState, Job
from tasks.services.imports import import_items
from tasks.services.pool import assign_next_hit
from tasks.services.publishing import publish_job
from tasks.services.review import approve_assignment
from tasks.worker_scores import list_worker_scorecards
from tests.conftest import SYSTEM
from tests.factories import JobFactory
from workforce.models import Worker

pytestmark = pytest.mark.django_db

MakeWorker = Callable[..., Worker]
PLACES = (1, 2, 3)


def _client(worker: Worker) -> Client:
    client = Client()
    client.force_login(worker.user)
    return client


def _gold_job(*, normal: int = 1, **fields: Any) -> Job:
    """Pages of 3 places: the job's own items plus hidden gold (correct answer "pos") on every page."""
    fields = {"items_per_hit": 3, "gold_rate": 0.99, "redundancy": 1, **fields}
    job = JobFactory(**fields)
    rows = "".join(f"n{i},normal {i},\n" for i in range(normal)) + "".join(f"g{i},gold {i},pos\n" for i in range(6))
    import_items(job=job, stream=io.StringIO("external_id,text,gold\n" + rows), filename="i.csv", actor=SYSTEM)
    return publish_job(job=job, actor=SYSTEM)


def _submit_page(client: Client, lease: Assignment, label: str, *, json: bool = False) -> Any:
    """Every place on the page answered ``label``; as the page's script posts it when ``json``."""
    headers = {"Accept": "application/json"} if json else {}
    return client.post(
        reverse("submit-task", args=[lease.uuid]), {f"answer-{n}": label for n in PLACES}, headers=headers
    )


# --- 1. training feedback when the missed gold was the worker's last task ----------------------------------


def test_training_feedback_on_the_last_task_comes_before_the_no_more_work_message(make_worker: MakeWorker) -> None:
    job = _gold_job(training_mode=True)
    worker = make_worker()
    lease = assign_next_hit(job=job, worker=worker, rng=random.Random(0))
    response = _submit_page(_client(worker), lease, "neg")
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert response["Location"] == reverse("work-list")
    assert shown[0].startswith("Training, item ") and shown[0].endswith(
        "you answered neg, the correct answer was pos."
    ), shown
    assert shown[-1] == f"There is no more work for you in “{job.name}” right now."


def test_training_feedback_on_the_last_task_is_in_the_json_reply(make_worker: MakeWorker) -> None:
    job = _gold_job(training_mode=True)
    worker = make_worker()
    lease = assign_next_hit(job=job, worker=worker, rng=random.Random(0))
    body = _submit_page(_client(worker), lease, "neg", json=True).json()
    assert body["next"] is None and body["redirect"] == reverse("work-list")
    assert body["message"] == f"There is no more work for you in “{job.name}” right now."
    missed = body["feedback"]["missed"]
    assert missed and all(m["your_answer"] == "neg" and m["correct"] == "pos" for m in missed), missed


# --- 2. training feedback for an empty multi-label answer --------------------------------------------------


def test_training_feedback_names_an_empty_multilabel_answer(make_worker: MakeWorker) -> None:
    job = _gold_job(normal=3, task_kind="text_multilabel", training_mode=True, items_per_hit=1)
    worker = make_worker()
    lease = assign_next_hit(job=job, worker=worker, rng=random.Random(0))
    assert lease.hit.is_gold
    response = _client(worker).post(reverse("submit-task", args=[lease.uuid]), {})  # no box ticked
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert shown[0] == "Training, you chose no label, the correct answer was pos.", shown


# --- 3. the scores page of an hourly job --------------------------------------------------------------------


def _waiting_line(worker: Worker) -> str:
    page = _client(worker).get(reverse("my-scores")).content.decode()
    match = re.search(r"(\d+) tasks? waiting for review: up to ([0-9.]+) USD", page)
    return match.group(0) if match else ""


def test_the_scores_page_of_an_hourly_job_shows_the_hourly_pay_waiting(
    make_published_job: Callable[..., Job], make_worker: MakeWorker
) -> None:
    job = make_published_job(items=1, redundancy=1, reward=Decimal("0.05"))
    Job.objects.filter(pk=job.pk).update(pay_mode="hourly", hourly_rate=Decimal("12.00"))
    worker = make_worker()
    lease = assign_next_hit(job=job, worker=worker)
    Assignment.objects.filter(pk=lease.pk).update(accepted_at=timezone.now() - timedelta(minutes=5))
    _client(worker).post(reverse("submit-task", args=[lease.uuid]), {"answer-1": "pos"})
    (card,) = list_worker_scorecards(worker)
    assert (card.awaiting_review, card.awaiting_pay) == (1, Decimal("1.00"))  # 12.00/h x 5 min, not 0.05
    assert _waiting_line(worker) == "1 task waiting for review: up to 1.00 USD"


def test_the_waiting_pay_costs_no_query_per_assignment(
    make_published_job: Callable[..., Job], make_worker: MakeWorker
) -> None:
    job = make_published_job(items=4, redundancy=1)
    Job.objects.filter(pk=job.pk).update(pay_mode="hourly", hourly_rate=Decimal("6.00"))
    worker = make_worker()
    client = _client(worker)

    def submit_one() -> None:
        lease = assign_next_hit(job=job, worker=worker)
        Assignment.objects.filter(pk=lease.pk).update(accepted_at=timezone.now() - timedelta(minutes=1))
        client.post(reverse("submit-task", args=[lease.uuid]), {"answer-1": "pos"})

    submit_one()
    with CaptureQueriesContext(connection) as one:
        assert list_worker_scorecards(worker)[0].awaiting_pay == Decimal("0.10")
    for _ in range(3):
        submit_one()
    with CaptureQueriesContext(connection) as four:
        assert list_worker_scorecards(worker)[0].awaiting_pay == Decimal("0.40")
    assert len(four.captured_queries) == len(one.captured_queries)


# --- 4. rejections for missed gold made at submit time -------------------------------------------------------


def test_a_page_rejected_for_missed_gold_waits_like_any_other_right_after_submitting(make_worker: MakeWorker) -> None:
    job = _gold_job(redundancy=2, gold_miss_action="reject")
    missed, passed = make_worker(), make_worker()
    missed_lease = assign_next_hit(job=job, worker=missed, rng=random.Random(0))
    passed_lease = assign_next_hit(job=job, worker=passed, rng=random.Random(0))
    _submit_page(_client(missed), missed_lease, "neg")  # every gold answer wrong: rejected at once
    _submit_page(_client(passed), passed_lease, "pos")  # gold right: waits for a reviewer
    states = {a.worker_id: a.state for a in Assignment.objects.filter(job=job)}
    assert states == {missed.pk: AssignmentState.REJECTED, passed.pk: AssignmentState.SUBMITTED}
    assert _waiting_line(missed) == _waiting_line(passed) == "1 task waiting for review: up to 0.05 USD"


def test_a_missed_gold_rejection_stops_waiting_once_a_later_task_has_been_reviewed(make_worker: MakeWorker) -> None:
    job = _gold_job(normal=2, gold_miss_action="reject")
    worker = make_worker()
    client = _client(worker)
    first = assign_next_hit(job=job, worker=worker, rng=random.Random(0))
    _submit_page(client, first, "neg")
    assert Assignment.objects.get(pk=first.pk).state == AssignmentState.REJECTED  # every gold answer wrong
    second = assign_next_hit(job=job, worker=worker, rng=random.Random(1))
    _submit_page(client, second, "pos")
    assert _waiting_line(worker) == "2 tasks waiting for review: up to 0.10 USD"
    approve_assignment(assignment=Assignment.objects.get(pk=second.pk), actor=SYSTEM)
    (card,) = list_worker_scorecards(worker)
    assert (card.awaiting_review, card.awaiting_pay) == (0, Decimal("0"))


AUTO_REVIEW_EVERY_5_MINUTES = {
    "auto-review": {"task": "tasks.tasks.auto_review_task", "schedule": timedelta(minutes=5)}
}


@override_settings(CELERY_BEAT_SCHEDULE=AUTO_REVIEW_EVERY_5_MINUTES)
def test_on_an_auto_approved_job_a_missed_gold_rejection_waits_until_the_auto_review_would_have_run(
    make_worker: MakeWorker,
) -> None:
    job = _gold_job(gold_miss_action="reject", auto_approve_after=timedelta(hours=1))
    worker = make_worker()
    lease = assign_next_hit(job=job, worker=worker, rng=random.Random(0))
    _submit_page(_client(worker), lease, "neg")
    submitted = Assignment.objects.filter(pk=lease.pk)
    assert submitted.get().state == AssignmentState.REJECTED
    now = timezone.now()
    submitted.update(submitted_at=now - timedelta(hours=1, minutes=4))  # due, but the sweep may not have run
    assert list_worker_scorecards(worker)[0].awaiting_review == 1
    submitted.update(submitted_at=now - timedelta(hours=1, minutes=6))  # any ordinary page is reviewed by now
    assert list_worker_scorecards(worker)[0].awaiting_review == 0
