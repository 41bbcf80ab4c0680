"""The internal pool's worker pages: who may open them, another worker's task, expired leases, HTTP methods."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tasks.models import Answer, Assignment, AssignmentState, Hit, Job
from tasks.roles import OPS_MANAGER
from tests.factories import UserFactory
from tests.tasks.test_views import (
    assignment_from_redirect,
    messages_of,
    return_url,
    start,
    submit_url,
    task_url,
)
from workforce.models import Worker

pytestmark = pytest.mark.django_db


# --- who may see the pages ------------------------------------------------------------------------


def test_the_work_list_requires_login() -> None:
    response = Client().get("/work/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert "next=/work/" in response["Location"]


def test_a_task_page_requires_login(make_published_job: Callable[..., Job], worker: Worker) -> None:
    job = make_published_job(items=1)
    client = Client()
    client.force_login(worker.user)
    assignment = start(client, job)
    response = Client().get(task_url(assignment))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_a_staff_user_without_a_worker_gets_403_on_the_work_list(login_client: Callable[[Any], Client]) -> None:
    user = UserFactory(username="staffer", is_staff=True)
    user.groups.add(Group.objects.get(name=OPS_MANAGER))
    response = login_client(user).get("/work/")
    assert response.status_code == 403
    assert b"This page is for crowd workers." in response.content


def test_a_staff_user_without_a_worker_cannot_start_a_job(
    make_published_job: Callable[..., Job], login_client: Callable[[Any], Client]
) -> None:
    job = make_published_job(items=1)
    response = login_client(UserFactory(is_staff=True)).post(reverse("start-job", args=[job.pk]))
    assert response.status_code == 403
    assert not Assignment.objects.exists()


def test_the_home_page_sends_staff_to_the_admin_and_workers_to_their_work(
    worker_client: Client, login_client: Callable[[Any], Client]
) -> None:
    assert worker_client.get("/")["Location"] == reverse("work-list")
    assert login_client(UserFactory(is_staff=True)).get("/")["Location"] == reverse("admin:index")


# --- another worker's task ------------------------------------------------------------------------


def test_a_worker_cannot_open_another_workers_task(
    make_published_job: Callable[..., Job], worker_client: Client, make_worker: Callable[..., Worker]
) -> None:
    job = make_published_job(items=2)
    theirs = start(worker_client, job)
    intruder = Client()
    intruder.force_login(make_worker().user)
    assert intruder.get(task_url(theirs)).status_code == 404


def test_a_worker_cannot_submit_another_workers_task(
    make_published_job: Callable[..., Job], worker_client: Client, make_worker: Callable[..., Worker]
) -> None:
    job = make_published_job(items=2)
    theirs = start(worker_client, job)
    intruder = Client()
    intruder.force_login(make_worker().user)
    response = intruder.post(submit_url(theirs), {"answer-1": "pos"})
    assert response.status_code == 404
    assert not Answer.objects.exists()
    theirs.refresh_from_db()
    assert theirs.state == AssignmentState.ACCEPTED


def test_a_worker_cannot_skip_another_workers_task(
    make_published_job: Callable[..., Job], worker_client: Client, make_worker: Callable[..., Worker]
) -> None:
    job = make_published_job(items=2)
    theirs = start(worker_client, job)
    intruder = Client()
    intruder.force_login(make_worker().user)
    assert intruder.post(return_url(theirs)).status_code == 404
    theirs.refresh_from_db()
    assert theirs.state == AssignmentState.ACCEPTED


# --- expired leases -------------------------------------------------------------------------------


def test_an_expired_lease_is_refused_on_submit_with_a_message_and_stores_nothing(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    job = make_published_job(items=2)
    assignment = start(worker_client, job)
    Assignment.objects.filter(pk=assignment.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    response = worker_client.post(submit_url(assignment), {"answer-1": "pos"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("work-list")
    assert any("Your time for this task ran out" in m for m in messages_of(response))
    assert not Answer.objects.exists()
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.EXPIRED
    hit = Hit.objects.get(pk=assignment.hit_id)
    assert (hit.slots_taken, hit.assignments_submitted) == (0, 0)


def test_the_task_page_of_an_expired_lease_is_not_shown(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    job = make_published_job(items=1)
    assignment = start(worker_client, job)
    Assignment.objects.filter(pk=assignment.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    response = worker_client.get(task_url(assignment), follow=True)
    assert response.redirect_chain[-1][0] == reverse("work-list")
    assert "That task is no longer open for you." in messages_of(response)


# --- HTTP methods and CSRF ------------------------------------------------------------------------


def test_get_on_post_only_endpoints_is_405_or_back_to_the_task(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    job = make_published_job(items=1)
    assert worker_client.get(reverse("start-job", args=[job.pk])).status_code == 405
    assignment = start(worker_client, job)
    # a GET on submit/ or return/ (the sign-in page's ``next`` after the session ended) goes back to the task
    for url in (submit_url(assignment), return_url(assignment)):
        response = worker_client.get(url)
        assert response.status_code == 302 and response["Location"] == task_url(assignment)
    assert not Answer.objects.exists()
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.ACCEPTED


def test_post_on_the_task_page_is_405(make_published_job: Callable[..., Job], worker_client: Client) -> None:
    job = make_published_job(items=1)
    assignment = start(worker_client, job)
    assert worker_client.post(task_url(assignment)).status_code == 405
    assert worker_client.post("/work/").status_code == 405


def test_csrf_is_enforced_on_submit(make_published_job: Callable[..., Job], worker: Worker) -> None:
    job = make_published_job(items=2)
    client = Client(enforce_csrf_checks=True)
    client.force_login(worker.user)
    page = client.get("/work/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]

    assert client.post(reverse("start-job", args=[job.pk])).status_code == 403
    assert not Assignment.objects.exists()

    response = client.post(reverse("start-job", args=[job.pk]), {"csrfmiddlewaretoken": token})
    assignment = assignment_from_redirect(response)
    data = {"answer-1": "pos"}
    assert client.post(submit_url(assignment), data).status_code == 403
    assert not Answer.objects.exists()

    assert client.post(submit_url(assignment), {**data, "csrfmiddlewaretoken": token}).status_code == 302
    assert Answer.objects.count() == 1
