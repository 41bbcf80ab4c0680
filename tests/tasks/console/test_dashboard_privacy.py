"""The job page's "Workers on it" table names MTurk workers as the viewer may see them: the cached figures are
shared, so the id is masked when the page is shown, for readers without the identity permission."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tasks.models import Job, WorkerJobScore
from workforce.models import Marketplace, Worker
from workforce.privacy import mask_worker_id

pytestmark = pytest.mark.django_db
REAL_ID = "A1REALMTURKID"


def _job_page(client: Client, job: Job) -> str:
    url = reverse("admin:tasks_job_change", args=[job.pk])
    client.get(url)  # the first view may compute and cache the figures
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("first_viewer", ["ops", "reviewer"])
def test_a_reviewer_sees_the_pseudonym_and_an_ops_manager_the_id_whoever_filled_the_cache(
    first_viewer: str,
    make_published_job: Callable[..., Job],
    make_worker: Callable[..., Worker],
    ops_manager: Any,
    reviewer: Any,
    login_client: Callable[[Any], Client],
) -> None:
    job = make_published_job(items=2)
    worker = make_worker(marketplace=Marketplace.MTURK, external_id=REAL_ID, display_name="")
    WorkerJobScore.objects.create(
        job=job, worker=worker, answers=5, gold_answers=1, accuracy=0.8, updated_at=timezone.now()
    )
    clients = {"ops": login_client(ops_manager), "reviewer": login_client(reviewer)}
    _job_page(clients[first_viewer], job)

    as_reviewer = _job_page(clients["reviewer"], job)
    assert REAL_ID not in as_reviewer
    assert f"<td>{mask_worker_id(REAL_ID)}</td>" in as_reviewer
    as_ops = _job_page(clients["ops"], job)
    assert f"<td>{REAL_ID}</td>" in as_ops


def test_an_internal_workers_display_name_is_shown_to_both(
    make_published_job: Callable[..., Job],
    make_worker: Callable[..., Worker],
    reviewer: Any,
    login_client: Callable[[Any], Client],
) -> None:
    job = make_published_job(items=2)
    worker = make_worker(display_name="Ada L.")
    WorkerJobScore.objects.create(job=job, worker=worker, answers=3, updated_at=timezone.now())
    assert "<td>Ada L.</td>" in _job_page(login_client(reviewer), job)
