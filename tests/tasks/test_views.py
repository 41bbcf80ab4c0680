"""The internal pool's worker pages, driven through Django's test client."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tasks.models import Answer, Assignment, AssignmentState, Hit, HitItem, HitState, Job, JobState, TaskKind
from tasks.services.publishing import cancel_job, publish_job
from tests.conftest import SYSTEM
from tests.factories import ItemFactory, JobFactory
from workforce.models import Worker

pytestmark = pytest.mark.django_db


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def task_url(assignment: Assignment) -> str:
    return reverse("task", args=[assignment.uuid])


def submit_url(assignment: Assignment) -> str:
    return reverse("submit-task", args=[assignment.uuid])


def return_url(assignment: Assignment) -> str:
    return reverse("return-task", args=[assignment.uuid])


def start(client: Client, job: Job) -> Assignment:
    """POST start and return the assignment the redirect points at."""
    response = client.post(reverse("start-job", args=[job.pk]))
    assert response.status_code == 302
    match = re.fullmatch(r"/work/tasks/([0-9a-f-]{36})/", response["Location"])
    assert match, response["Location"]
    return Assignment.objects.get(uuid=match.group(1))


def assignment_from_redirect(response: Any) -> Assignment:
    match = re.fullmatch(r"/work/tasks/([0-9a-f-]{36})/", response["Location"])
    assert match, f"expected a redirect to a task page, got {response['Location']}"
    return Assignment.objects.get(uuid=match.group(1))


def only_item_id(assignment: Assignment) -> int:
    return HitItem.objects.get(hit_id=assignment.hit_id).item_id


# --- the work list --------------------------------------------------------------------------------


def test_a_worker_sees_published_jobs_with_their_pay(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    job = make_published_job(items=2, name="Sort the reviews", reward=Decimal("0.25"), description="Tone of reviews.")
    JobFactory(name="A draft nobody should see", state=JobState.DRAFT)
    response = worker_client.get("/work/")
    assert response.status_code == 200
    page = response.content.decode()
    assert job.name in page
    assert "Tone of reviews." in page
    assert "0.25 USD" in page
    assert reverse("start-job", args=[job.pk]) in page
    assert "A draft nobody should see" not in page


def test_a_worker_sees_no_jobs_message_when_nothing_is_published(worker_client: Client) -> None:
    JobFactory(name="Still a draft")
    response = worker_client.get("/work/")
    assert response.status_code == 200
    assert b"No jobs are open right now." in response.content
    assert b"Still a draft" not in response.content


# --- starting and viewing a task ------------------------------------------------------------------


def test_starting_a_job_redirects_to_a_task_leased_to_the_worker(
    make_published_job: Callable[..., Job], worker_client: Client, worker: Worker
) -> None:
    job = make_published_job(items=2)
    assignment = start(worker_client, job)
    assert assignment.worker_id == worker.pk
    assert assignment.job_id == job.pk
    assert assignment.state == AssignmentState.ACCEPTED
    assert assignment.lease_expires_at > timezone.now()


def test_starting_again_continues_the_same_lease(make_published_job: Callable[..., Job], worker_client: Client) -> None:
    job = make_published_job(items=3)
    first = start(worker_client, job)
    second = start(worker_client, job)
    assert first.pk == second.pk
    assert Assignment.objects.count() == 1


def test_starting_an_unknown_job_is_404(worker_client: Client) -> None:
    assert worker_client.post(reverse("start-job", args=[999999])).status_code == 404


def test_starting_a_paused_job_lands_on_the_work_list_with_a_message(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    job = make_published_job(items=2)
    start(worker_client, job)  # a worker who has worked on the job knows its name (others get a 404)
    Job.objects.filter(pk=job.pk).update(state=JobState.PAUSED)
    response = worker_client.post(reverse("start-job", args=[job.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("work-list")
    assert any("paused" in m for m in messages_of(response))
    assert Assignment.objects.count() == 1


def test_the_task_page_shows_the_text_the_labels_with_shortcut_keys_and_the_instructions(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    job = make_published_job(items=1, instructions="Read the whole review before choosing.")
    assignment = start(worker_client, job)
    item = HitItem.objects.get(hit_id=assignment.hit_id).item
    response = worker_client.get(task_url(assignment))
    assert response.status_code == 200
    page = response.content.decode()
    assert item.payload["text"] in page
    assert "Read the whole review before choosing." in page
    for key, label in enumerate(job.labels, start=1):
        assert re.search(
            rf'<input type="radio" name="answer-1" value="{label}" required>\s*<kbd>{key}</kbd> {label}', page
        ), label
    assert submit_url(assignment) in page
    assert return_url(assignment) in page


def test_the_task_page_shows_the_image_of_an_image_job(worker_client: Client) -> None:
    job = JobFactory(task_kind=TaskKind.IMAGE_CLASSIFICATION, labels=["cat", "dog"])
    ItemFactory(job=job, payload={"image_url": "https://img.example.org/cat-17.png"})
    publish_job(job=job, actor=SYSTEM)
    assignment = start(worker_client, job)
    page = worker_client.get(task_url(assignment)).content.decode()
    assert '<img class="item-image" src="https://img.example.org/cat-17.png"' in page
    assert "<kbd>1</kbd> cat" in page
    assert "<kbd>2</kbd> dog" in page


def test_the_task_page_of_a_returned_task_sends_the_worker_back_to_the_list(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    job = make_published_job(items=1)
    assignment = start(worker_client, job)
    Assignment.objects.filter(pk=assignment.pk).update(state=AssignmentState.RETURNED)
    response = worker_client.get(task_url(assignment))
    assert response.status_code == 302
    assert response["Location"] == reverse("work-list")


# --- submitting -----------------------------------------------------------------------------------


def test_a_valid_answer_is_stored_and_the_worker_goes_straight_to_a_different_task(
    make_published_job: Callable[..., Job], worker_client: Client, worker: Worker
) -> None:
    job = make_published_job(items=3)
    first = start(worker_client, job)
    item_id = only_item_id(first)
    response = worker_client.post(submit_url(first), {"answer-1": "neg"})
    assert response.status_code == 302
    answer = Answer.objects.get()
    assert (answer.item_id, answer.value, answer.worker_id, answer.job_id) == (item_id, "neg", worker.pk, job.pk)
    first.refresh_from_db()
    assert first.state == AssignmentState.SUBMITTED
    assert Hit.objects.get(pk=first.hit_id).assignments_submitted == 1
    following = assignment_from_redirect(response)
    assert following.pk != first.pk
    assert following.hit_id != first.hit_id
    assert only_item_id(following) != item_id
    assert following.state == AssignmentState.ACCEPTED


def test_a_worker_never_gets_the_same_item_twice(make_published_job: Callable[..., Job], worker_client: Client) -> None:
    job = make_published_job(items=3, redundancy=3)
    seen: list[int] = []
    assignment = start(worker_client, job)
    for _ in range(3):
        item_id = only_item_id(assignment)
        seen.append(item_id)
        response = worker_client.post(submit_url(assignment), {"answer-1": "pos"})
        if response["Location"] == reverse("work-list"):
            break
        assignment = assignment_from_redirect(response)
    assert len(seen) == 3
    assert len(set(seen)) == 3
    # The job still wants answers from others, but this worker has done every item.
    assert response["Location"] == reverse("work-list")
    assert Job.objects.get(pk=job.pk).state == JobState.PUBLISHED


def test_an_unknown_label_shows_the_error_and_stores_nothing(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    job = make_published_job(items=2)
    assignment = start(worker_client, job)
    response = worker_client.post(submit_url(assignment), {"answer-1": "cat"}, follow=True)
    assert response.redirect_chain == [(task_url(assignment), 302)]
    assert response.status_code == 200
    shown = messages_of(response)
    assert len(shown) == 1
    assert "Choose one of the job's labels (pos, neg, neutral)" in shown[0]
    assert "'cat'" in shown[0]
    assert "Choose one of the job&#x27;s labels" in response.content.decode()
    assert not Answer.objects.exists()
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.ACCEPTED
    assert Hit.objects.get(pk=assignment.hit_id).assignments_submitted == 0


def test_submitting_without_an_answer_stores_nothing(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    job = make_published_job(items=2)
    assignment = start(worker_client, job)
    response = worker_client.post(submit_url(assignment), {}, follow=True)
    assert response.redirect_chain == [(task_url(assignment), 302)]
    assert any("Answer every item" in m for m in messages_of(response))
    assert not Answer.objects.exists()


def test_submitting_twice_is_refused_and_stores_one_answer(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    job = make_published_job(items=1, redundancy=2)
    assignment = start(worker_client, job)
    data = {"answer-1": "pos"}
    worker_client.post(submit_url(assignment), data)
    response = worker_client.post(submit_url(assignment), data, follow=True)
    assert response.redirect_chain[-1][0] == reverse("work-list")
    # the repeat is no error: the answers were saved, and the worker moves on (here: nothing left)
    assert "Your answers for that task were already saved." in messages_of(response)
    assert Answer.objects.count() == 1
    assert Hit.objects.get(pk=assignment.hit_id).assignments_submitted == 1


def test_a_multi_label_job_stores_the_list_of_chosen_labels_in_label_order(worker_client: Client) -> None:
    job = JobFactory(task_kind=TaskKind.TEXT_MULTILABEL, labels=["sports", "politics", "tech"])
    ItemFactory.create_batch(2, job=job)
    publish_job(job=job, actor=SYSTEM)
    assignment = start(worker_client, job)
    page = worker_client.get(task_url(assignment)).content.decode()
    assert '<input type="checkbox" name="answer-1" value="tech">' in page
    response = worker_client.post(submit_url(assignment), {"answer-1": ["tech", "sports"]})
    assert response.status_code == 302
    assert Answer.objects.get().value == ["sports", "tech"]
    assert assignment_from_redirect(response).hit_id != assignment.hit_id


def test_a_multi_label_answer_with_an_unknown_label_stores_nothing(worker_client: Client) -> None:
    job = JobFactory(task_kind=TaskKind.TEXT_MULTILABEL, labels=["sports", "politics"])
    ItemFactory(job=job)
    publish_job(job=job, actor=SYSTEM)
    assignment = start(worker_client, job)
    response = worker_client.post(submit_url(assignment), {"answer-1": ["sports", "cooking"]}, follow=True)
    assert "Unknown label(s): cooking." in messages_of(response)
    assert not Answer.objects.exists()


def test_when_the_job_runs_out_of_work_the_worker_lands_on_the_work_list_with_a_message(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    job = make_published_job(items=1, redundancy=1, name="Tiny job")
    assignment = start(worker_client, job)
    response = worker_client.post(submit_url(assignment), {"answer-1": "pos"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("work-list")
    assert response.status_code == 200
    shown = messages_of(response)
    assert len(shown) == 1
    assert "Tiny job" in shown[0]
    assert Answer.objects.count() == 1
    assert Job.objects.get(pk=job.pk).state == JobState.COMPLETED


# --- skipping -------------------------------------------------------------------------------------


def test_skipping_frees_the_hit_and_gives_the_next_one(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    job = make_published_job(items=3)
    first = start(worker_client, job)
    assert Hit.objects.get(pk=first.hit_id).slots_taken == 1
    response = worker_client.post(return_url(first))
    assert response.status_code == 302
    first.refresh_from_db()
    assert first.state == AssignmentState.RETURNED
    assert Hit.objects.get(pk=first.hit_id).slots_taken == 0
    following = assignment_from_redirect(response)
    assert following.hit_id != first.hit_id
    assert not Answer.objects.exists()


def test_a_skipped_hit_goes_to_another_worker(
    make_published_job: Callable[..., Job], worker_client: Client, make_worker: Callable[..., Worker]
) -> None:
    job = make_published_job(items=1, redundancy=1)
    first = start(worker_client, job)
    response = worker_client.post(return_url(first), follow=True)
    assert response.redirect_chain[-1][0] == reverse("work-list")
    other = Client()
    other.force_login(make_worker().user)
    assert start(other, job).hit_id == first.hit_id


def test_skipping_a_submitted_task_is_refused(make_published_job: Callable[..., Job], worker_client: Client) -> None:
    job = make_published_job(items=2)
    assignment = start(worker_client, job)
    worker_client.post(submit_url(assignment), {"answer-1": "pos"})
    response = worker_client.post(return_url(assignment), follow=True)
    assert "This task is no longer yours to return." in messages_of(response)
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.SUBMITTED


# --- the job's state and the worker's standing ----------------------------------------------------


def test_a_task_of_a_cancelled_job_is_refused_on_submit_and_stores_nothing(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    job = make_published_job(items=1, redundancy=1)
    assignment = start(worker_client, job)
    cancel_job(job=job, actor=SYSTEM)
    response = worker_client.post(submit_url(assignment), {"answer-1": "pos"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("work-list")
    assert not Answer.objects.exists()
    assert Hit.objects.get(pk=assignment.hit_id).state == HitState.CANCELLED


def test_a_paused_job_still_accepts_the_lease_already_given(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    job = make_published_job(items=2)
    assignment = start(worker_client, job)
    Job.objects.filter(pk=job.pk).update(state=JobState.PAUSED)
    response = worker_client.post(submit_url(assignment), {"answer-1": "pos"}, follow=True)
    assert Answer.objects.count() == 1
    # ...but hands out no new work.
    assert response.redirect_chain[-1][0] == reverse("work-list")
    assert any("paused" in m for m in messages_of(response))


def test_an_expired_lease_is_not_offered_as_a_task_to_continue(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    job = make_published_job(items=2)
    assignment = start(worker_client, job)
    assert "Continue your task" in worker_client.get("/work/").content.decode()
    Assignment.objects.filter(pk=assignment.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    page = worker_client.get("/work/").content.decode()
    assert "Continue your task" not in page
    assert "Start working" in page


def test_a_blocked_worker_gets_no_new_work(make_published_job: Callable[..., Job], worker: Worker) -> None:
    job = make_published_job(items=2)
    Worker.objects.filter(pk=worker.pk).update(is_blocked=True, blocked_reason="spam")
    client = Client()
    client.force_login(worker.user)
    response = client.post(reverse("start-job", args=[job.pk]), follow=True)
    assert response.redirect_chain[-1][0] == reverse("work-list")
    assert "Your account is blocked from new work." in messages_of(response)
    assert not Assignment.objects.exists()


def test_submit_and_skip_reached_by_get_go_back_to_the_task_and_change_nothing(
    make_published_job: Callable[..., Job], worker_client: Client, make_worker: Callable[..., Worker]
) -> None:
    """The login page's ``next`` after a session ended mid-task is a GET on the action's URL: the worker
    goes back to their task; another worker's task stays a 404 behind that redirect."""
    job = make_published_job(items=2)
    mine = start(worker_client, job)
    for url in (submit_url(mine), return_url(mine)):
        response = worker_client.get(url)
        assert response.status_code == 302 and response["Location"] == task_url(mine)
    mine.refresh_from_db()
    assert mine.state == AssignmentState.ACCEPTED and not Answer.objects.exists()
    other = Client()
    other.force_login(make_worker().user)
    response = other.get(submit_url(mine), follow=True)
    assert response.status_code == 404
