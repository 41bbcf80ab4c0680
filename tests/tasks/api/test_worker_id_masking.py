"""Marketplace worker ids are personal data: a reader without ``workforce.view_worker_identity`` (a reviewer)
gets them masked from every API list and cannot confirm one through a filter or an admin search."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from rest_framework.test import APIClient

from tasks.models import Assignment, Job
from tasks.roles import REVIEWER
from tests.factories import UserFactory
from workforce.privacy import mask_worker_id

pytestmark = pytest.mark.django_db


@pytest.fixture
def reviewer(db: Any) -> Any:
    user = UserFactory(username="reviewer", is_staff=True)
    user.groups.add(Group.objects.get(name=REVIEWER))
    return user


def _one_worker(job: Job) -> str:
    return str(Assignment.objects.filter(job=job).order_by("pk").values_list("worker__external_id", flat=True)[0])


def test_a_reviewer_sees_masked_worker_ids_in_assignments_and_scores(
    reviewer: Any, as_user: Any, api: APIClient, labeled_job: Job
) -> None:
    ids = set(Assignment.objects.filter(job=labeled_job).values_list("worker__external_id", flat=True))
    client = as_user(reviewer)
    for path in ("assignments", "workers"):
        rows = client.get(f"/api/jobs/{labeled_job.pk}/{path}/").json()["results"]
        assert {r["worker"] for r in rows} == {mask_worker_id(i) for i in ids}, path
        # the ops manager holds the identity permission and sees the ids as the marketplace gave them
        assert {r["worker"] for r in api.get(f"/api/jobs/{labeled_job.pk}/{path}/").json()["results"]} == ids


def test_the_worker_filter_takes_the_id_the_reader_is_shown(
    reviewer: Any, as_user: Any, api: APIClient, labeled_job: Job
) -> None:
    worker = _one_worker(labeled_job)
    url = f"/api/jobs/{labeled_job.pk}/assignments/"
    client = as_user(reviewer)
    assert client.get(url, {"worker": worker}).json()["results"] == []  # the raw id confirms nothing
    masked = client.get(url, {"worker": mask_worker_id(worker)}).json()["results"]
    assert len(masked) == 4 and {r["worker"] for r in masked} == {mask_worker_id(worker)}
    assert {r["worker"] for r in api.get(url, {"worker": worker}).json()["results"]} == {worker}


@pytest.mark.parametrize(
    "changelist", ["tasks/assignment", "tasks/workerjobscore", "workforce/worker"], ids=lambda c: c.split("/")[1]
)
def test_an_admin_search_by_worker_id_needs_the_identity_permission(
    reviewer: Any, ops_manager: Any, labeled_job: Job, changelist: str
) -> None:
    worker = _one_worker(labeled_job)
    url = f"/admin/{changelist}/"
    as_reviewer, as_ops = Client(), Client()
    as_reviewer.force_login(reviewer)
    as_ops.force_login(ops_manager)
    reviewer_page = as_reviewer.get(url, {"q": worker})
    ops_page = as_ops.get(url, {"q": worker})
    assert reviewer_page.status_code == ops_page.status_code == 200
    assert reviewer_page.context["cl"].result_count == 0
    assert ops_page.context["cl"].result_count >= 1
