"""The worker-page findings of the crowd worker audit (/work/audit/worker.md), as behaviour: crafted input is
refused with a sentence (never a 500), refusals name the real reason and say it where the worker lands,
and the pages tell workers what they are paid and what is left for them."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tasks.models import Answer, Assignment, AssignmentState, Job, JobState, RawResult, TaskKind
from tasks.services.publishing import cancel_job, publish_job
from tasks.services.quality import block_worker
from tests.conftest import SYSTEM
from tests.factories import ItemFactory, JobFactory
from tests.tasks.test_template_views import template_job  # noqa: F401  (fixture)
from tests.tasks.test_views import messages_of, start, submit_url, task_url
from workforce.models import Worker

pytestmark = pytest.mark.django_db

DEEP = "[" * 100_000
HUGE_BOX = '{"shapes": [{"label": "car", "box": [' + "9" * 400 + ", 0, 10, 10]}]}"


def _box_job() -> Job:
    job = JobFactory(task_kind=TaskKind.IMAGE_BOXES, labels=["car", "person"], redundancy=1)
    ItemFactory(job=job, payload={"image_url": "https://example.com/a.jpg", "width": 100, "height": 100})
    return publish_job(job=job, actor=SYSTEM)


def _layout_submit(client: Client, assignment: Assignment, raw: str) -> Any:
    return client.post(reverse("submit-layout-task", args=[assignment.uuid]), {"fields": raw}, follow=True)


# --- 1: crafted drawings and template forms -------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (DEEP, "The drawing could not be read (it is not JSON)."),
        (HUGE_BOX, "Shape 1 has a coordinate that is not a finite number."),
    ],
    ids=["deeply-nested", "huge-integer"],
)
def test_a_crafted_drawing_is_refused_with_a_sentence_not_a_500(
    worker_client: Client, value: str, message: str
) -> None:
    assignment = start(worker_client, _box_job())
    response = worker_client.post(submit_url(assignment), {"answer-1": value}, follow=True)
    assert response.status_code == 200 and message in messages_of(response)
    assert not Answer.objects.exists()
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.ACCEPTED


def test_a_deeply_nested_template_form_is_refused_with_a_sentence(
    template_job: Callable[..., Job],  # noqa: F811
    worker_client: Client,
) -> None:
    assignment = start(worker_client, template_job())
    response = _layout_submit(worker_client, assignment, DEEP)
    assert response.status_code == 200
    assert "The task form sent no readable answers." in messages_of(response)
    assert not RawResult.objects.exists()


# --- 2: a NUL character in a template form --------------------------------------------------------


def test_a_nul_in_a_template_form_is_refused_with_a_sentence_and_nothing_is_saved(
    template_job: Callable[..., Job],  # noqa: F811
    worker_client: Client,
) -> None:
    assignment = start(worker_client, template_job())
    raw = json.dumps([["sentiment", "positive"], ["comment", "a\x00b"]])
    response = _layout_submit(worker_client, assignment, raw)
    assert response.status_code == 200
    assert any("“comment” contains a NUL character" in m for m in messages_of(response))
    assert not RawResult.objects.exists() and not Answer.objects.exists()


@pytest.mark.postgres
@pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs PostgreSQL (jsonb cannot store NUL)")
def test_a_nul_in_a_template_form_is_no_500_on_postgresql(
    template_job: Callable[..., Job],  # noqa: F811
    worker_client: Client,
) -> None:
    assignment = start(worker_client, template_job())
    raw = json.dumps([["sentiment", "positive"], ["comment", "a\x00b"]])
    response = _layout_submit(worker_client, assignment, raw)
    assert response.status_code == 200 and not RawResult.objects.exists()
    fine = _layout_submit(worker_client, assignment, json.dumps([["sentiment", "positive"], ["comment", "ab"]]))
    assert fine.status_code == 200 and RawResult.objects.get().answers["comment"] == "ab"


# --- 5: a refusal on the script's path is said on the page it lands on ------------------------------


def test_a_refused_json_submit_that_leaves_the_task_says_why_on_the_job_list(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    assignment = start(worker_client, make_published_job(items=2))
    Assignment.objects.filter(pk=assignment.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    response = worker_client.post(submit_url(assignment), {"answer-1": "pos"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400 and response.json()["redirect"] == reverse("work-list")
    landed = worker_client.get(reverse("work-list"))
    assert messages_of(landed) == ["Your time for this task ran out and it went back to the pool; nothing was saved."]


def test_a_refusal_that_keeps_the_task_open_is_not_flashed_twice(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    assignment = start(worker_client, make_published_job(items=2))
    response = worker_client.post(submit_url(assignment), {}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400 and response.json()["redirect"] is None
    assert messages_of(worker_client.get(task_url(assignment))) == []


# --- 6: a stale page or an ended session ------------------------------------------------------------


def test_a_stale_csrf_token_gets_json_the_script_can_show(
    make_published_job: Callable[..., Job], worker: Worker, worker_client: Client
) -> None:
    assignment = start(worker_client, make_published_job(items=1))
    client = Client(enforce_csrf_checks=True)  # the page's token is not this session's any more
    client.force_login(worker.user)
    response = client.post(submit_url(assignment), {"answer-1": "pos"}, HTTP_ACCEPT="application/json")
    assert response.status_code == 403
    assert response.json() == {
        "error": "This page is out of date (you were signed out or signed in again since it was loaded). "
        "Reload the page and try again.",
        "reload": True,
    }
    page = client.post(submit_url(assignment), {"answer-1": "pos"})
    assert page.status_code == 403 and "This page is out of date" in page.content.decode()
    assert 'href="/"' in page.content.decode()  # a way back, in the site's own layout
    assert not Answer.objects.exists()


def test_after_signing_in_again_the_login_next_of_a_submit_leads_back_to_the_task(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    assignment = start(worker_client, make_published_job(items=1))
    response = worker_client.get(submit_url(assignment), follow=True)
    assert response.redirect_chain == [(task_url(assignment), 302)]
    assert response.status_code == 200


def test_an_unknown_page_is_a_404_in_the_sites_layout(worker_client: Client) -> None:
    response = worker_client.get("/work/tasks/00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Not found" in body and "Back to your work" in body and "CrowdOps" in body


# --- 7: cancelled and blocked leases are told the real reason ---------------------------------------


def test_a_submit_after_the_job_was_cancelled_says_so(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    job = make_published_job(items=2)
    assignment = start(worker_client, job)
    cancel_job(job=job, actor=SYSTEM)
    response = worker_client.post(submit_url(assignment), {"answer-1": "pos"}, follow=True)
    assert messages_of(response) == ["This job was cancelled, so the task can no longer be submitted."]


def test_a_submit_after_the_worker_was_blocked_says_so(
    make_published_job: Callable[..., Job], worker: Worker, worker_client: Client
) -> None:
    job = make_published_job(items=2)
    assignment = start(worker_client, job)
    block_worker(job=job, worker=worker, actor=SYSTEM, reason="audit test")
    response = worker_client.post(submit_url(assignment), {"answer-1": "pos"}, follow=True)
    assert messages_of(response) == ["You can no longer work on this job, so the task was not saved."]
    assert not Answer.objects.exists()


# --- 8 and 18: what the work pays ---------------------------------------------------------------------


def test_an_hourly_job_is_advertised_by_the_hour_on_the_list_and_the_task_page(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    job = make_published_job(items=2, pay_mode="hourly", hourly_rate=Decimal("12.00"), reward=Decimal("0.01"))
    listing = worker_client.get(reverse("work-list")).content.decode()
    assert "12.00 USD <small>per hour of active work (up to 10 min per task)</small>" in listing
    assert "per task</small>" not in listing
    page = worker_client.get(task_url(start(worker_client, job))).content.decode()
    assert "12.00 USD" in page and "per hour of active work" in page


def test_the_task_page_shows_the_reward_per_task(make_published_job: Callable[..., Job], worker_client: Client) -> None:
    page = worker_client.get(task_url(start(worker_client, make_published_job(items=1)))).content.decode()
    assert "0.05 USD <small>per task</small>" in page


# --- 9: the Content-Security-Policy lets qualification media and http item images load ---------------


def test_the_policy_allows_media_and_images_from_the_sources_imports_accept(worker_client: Client) -> None:
    policy = worker_client.get(reverse("work-list"))["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split("; ")}
    assert directives["img-src"] == ["'self'", "https:", "http:", "data:"]
    assert directives["media-src"] == directives["img-src"]
    assert directives["script-src"] == ["'self'"]


# --- 10: job names of drafts and cancelled jobs ------------------------------------------------------


@pytest.mark.parametrize("state", [JobState.DRAFT, JobState.CANCELLED, JobState.PAUSED])
def test_a_job_the_worker_cannot_see_is_a_404_without_its_name(worker_client: Client, state: str) -> None:
    job = JobFactory(state=state, name="CONFIDENTIAL: Acme merger docs triage")
    response = worker_client.post(reverse("start-job", args=[job.pk]), follow=True)
    assert response.status_code == 404
    assert "CONFIDENTIAL" not in response.content.decode()
    assert not any("CONFIDENTIAL" in m for m in messages_of(response))


# --- 11: the job list says when nothing is left for this worker ---------------------------------------


def test_the_job_list_says_when_the_worker_has_done_every_open_task(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    job = make_published_job(items=1, redundancy=2)
    worker_client.post(submit_url(start(worker_client, job)), {"answer-1": "pos"})
    page = worker_client.get(reverse("work-list")).content.decode()
    assert "You have done every task open to you in this job." in page
    assert reverse("start-job", args=[job.pk]) not in page


def test_the_job_list_tells_a_blocked_worker_instead_of_offering_work(
    make_published_job: Callable[..., Job], worker: Worker, worker_client: Client
) -> None:
    job = make_published_job(items=3)
    block_worker(job=job, worker=worker, actor=SYSTEM, reason="audit test")
    page = worker_client.get(reverse("work-list")).content.decode()
    assert "You can no longer work on this job." in page
    assert reverse("start-job", args=[job.pk]) not in page


# --- 12: an expired template lease goes back to the pool at once ------------------------------------


def test_an_expired_template_submit_expires_the_lease_with_one_message(
    template_job: Callable[..., Job],  # noqa: F811
    worker_client: Client,
) -> None:
    assignment = start(worker_client, template_job())
    Assignment.objects.filter(pk=assignment.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    response = _layout_submit(worker_client, assignment, json.dumps([["sentiment", "positive"]]))
    assert messages_of(response) == ["Your time for this task ran out and it went back to the pool; nothing was saved."]
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.EXPIRED
    assert not RawResult.objects.exists()


# --- 13: instructions as Markdown on every worker page ----------------------------------------------


def test_a_template_jobs_instructions_are_rendered_as_markdown(
    template_job: Callable[..., Job],  # noqa: F811
    worker_client: Client,
) -> None:
    assignment = start(worker_client, template_job(instructions="Read **carefully**.\n\n- one"))
    page = worker_client.get(task_url(assignment)).content.decode()
    assert "<strong>carefully</strong>" in page and "**" not in page


# --- 14: refused values are not echoed in full -------------------------------------------------------


def test_a_huge_refused_label_is_not_echoed_back_in_full(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    assignment = start(worker_client, make_published_job(items=1))
    response = worker_client.post(submit_url(assignment), {"answer-1": "x" * 200_000}, follow=True)
    (message,) = messages_of(response)
    assert message.startswith("Choose one of the job's labels (pos, neg, neutral), not 'xxx")
    assert len(message) < 200 and len(response.content) < 50_000


def test_a_huge_unknown_multilabel_value_is_not_echoed_back_in_full(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    assignment = start(worker_client, make_published_job(items=1, task_kind=TaskKind.TEXT_MULTILABEL))
    response = worker_client.post(submit_url(assignment), {"answer-1": ["pos", "y" * 100_000]}, follow=True)
    (message,) = messages_of(response)
    assert message.startswith("Unknown label(s): yyy") and len(message) < 200


# --- 16: a repeated submit moves on ------------------------------------------------------------------


def test_a_repeated_submit_moves_on_to_the_next_task(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    job = make_published_job(items=2, redundancy=1)
    first = start(worker_client, job)
    worker_client.post(submit_url(first), {"answer-1": "pos"})
    again = worker_client.post(submit_url(first), {"answer-1": "pos"})
    assert again.status_code == 302 and re.fullmatch(r"/work/tasks/[0-9a-f-]{36}/", again["Location"])
    assert again["Location"] != task_url(first)
    page = worker_client.get(again["Location"])
    assert messages_of(page) == ["Your answers for that task were already saved."]
    assert Answer.objects.count() == 1
