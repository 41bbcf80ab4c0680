"""A broker outage: calls that queue Celery work answer a JSON 503 with a sentence (the admin: an error
message), never an HTML 500, and an export asked for meanwhile is queued again by the beat sweep."""

from __future__ import annotations

import socket
from datetime import timedelta
from typing import Any

import pytest
from celery.app.task import Task
from django.conf import settings
from django.contrib.auth.models import Group
from django.test import Client, override_settings
from django.utils import timezone
from kombu.exceptions import OperationalError
from rest_framework.test import APIClient

from tasks.models import ExportState, IdempotencyRecord, Job, JobState, LabelExport
from tasks.roles import OPS_MANAGER
from tasks.services import adaptive_queue
from tasks.services.consensus import compute_consensus
from tasks.tasks import requeue_stale_exports_task, run_label_export_task
from tests.factories import ItemFactory, JobFactory, UserFactory
from tests.tasks.exports.conftest import SYSTEM, work
from workforce.models import AuditEvent

# Outside a test transaction, so on_commit hooks run as they do in a request (at once, after commit).
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def labeled_job(make_published_job: Any, make_worker: Any) -> Job:
    """4 items, 3 answers each, consensus computed."""
    job = make_published_job(items=4, redundancy=3, consensus_method="mv")
    work(job, [make_worker() for _ in range(3)], lambda n, ext: "neg" if n == 2 else "pos")
    compute_consensus(job=job, actor=SYSTEM)
    return job


@pytest.fixture
def broker_down(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Every task's apply_async (and so delay) fails as Celery does when its broker refuses connections."""

    def refuse(self: Any, *args: Any, **kwargs: Any) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6390. Connection refused.")

    monkeypatch.setattr(Task, "apply_async", refuse)
    return monkeypatch


@pytest.fixture
def api(db: Any) -> APIClient:
    user: Any = UserFactory(username="ops", is_staff=True)
    user.groups.add(Group.objects.get(name=OPS_MANAGER))
    client = APIClient()
    client.force_authenticate(user)
    return client


def _dead_broker_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{sock.getsockname()[1]}/0"


def test_an_export_asked_for_while_the_broker_is_down_is_a_503_and_stays_queued(
    api: APIClient, labeled_job: Job, broker_down: Any
) -> None:
    response = api.post(f"/api/jobs/{labeled_job.pk}/export/", {"format": "csv"}, format="json")
    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/json")
    export = LabelExport.objects.get()
    body = response.json()
    assert body["export"] == export.pk and body["state"] == "queued"
    assert "cannot be reached" in body["detail"] and "no need to ask again" in body["detail"]
    assert export.state == ExportState.QUEUED
    assert AuditEvent.objects.filter(action="labels.export_requested").count() == 1


def test_the_beat_sweep_runs_an_export_left_queued_once_the_broker_is_back(
    api: APIClient, labeled_job: Job, broker_down: Any
) -> None:
    assert api.post(f"/api/jobs/{labeled_job.pk}/export/", {"format": "csv"}, format="json").status_code == 503
    assert api.post(f"/api/jobs/{labeled_job.pk}/export/", {"format": "jsonl"}, format="json").status_code == 503
    stale, fresh = LabelExport.objects.order_by("pk")
    LabelExport.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(minutes=10))

    broker_down.undo()  # the broker is back (eager Celery: a queued task runs here and now)

    assert requeue_stale_exports_task() == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.state == ExportState.DONE and stale.rows_done == 4 and stale.file
    assert fresh.state == ExportState.QUEUED  # asked for a moment ago: a worker may still pick it up
    assert requeue_stale_exports_task() == 0


def test_the_sweep_while_the_broker_is_still_down_leaves_exports_queued(labeled_job: Job, broker_down: Any) -> None:
    from tasks.services.exports import requeue_stale_exports
    from tasks.tasks import QueueUnavailable

    export = LabelExport.objects.create(
        job=labeled_job, format="csv", options={}, created_at=timezone.now() - timedelta(hours=1)
    )
    with pytest.raises(QueueUnavailable):
        requeue_stale_exports(older_than=timedelta(minutes=5))
    export.refresh_from_db()
    assert export.state == ExportState.QUEUED


def test_a_requeued_export_runs_once_whatever_the_duplicates(labeled_job: Job) -> None:
    export = LabelExport.objects.create(
        job=labeled_job, format="csv", options={}, created_at=timezone.now() - timedelta(hours=1)
    )
    run_label_export_task(export_id=export.pk)
    export.refresh_from_db()
    done = (export.state, export.sha256, export.file.name, export.finished_at)
    assert export.state == ExportState.DONE
    # A duplicate message (the sweep re-sent it before the first run claimed the row) changes nothing.
    run_label_export_task(export_id=export.pk)
    export.refresh_from_db()
    assert (export.state, export.sha256, export.file.name, export.finished_at) == done
    assert AuditEvent.objects.filter(action="labels.exported").count() == 1
    # A row a worker has claimed (running) is not queued again.
    LabelExport.objects.filter(pk=export.pk).update(state=ExportState.RUNNING)
    assert requeue_stale_exports_task() == 0


def test_the_sweep_is_in_the_beat_schedule() -> None:
    entry: dict[str, Any] = settings.CELERY_BEAT_SCHEDULE["requeue-stale-exports"]
    assert entry["task"] == requeue_stale_exports_task.name
    assert entry["schedule"] <= timedelta(seconds=settings.EXPORT_REQUEUE_AFTER_SECONDS)


def test_consensus_while_the_broker_is_down_is_a_503(api: APIClient, labeled_job: Job, broker_down: Any) -> None:
    response = api.post(f"/api/jobs/{labeled_job.pk}/consensus/")
    assert response.status_code == 503
    assert "consensus of job" in response.json()["detail"] and "cannot be reached" in response.json()["detail"]


def test_publish_while_the_broker_is_down_is_a_503_and_the_job_stays_a_draft(api: APIClient, broker_down: Any) -> None:
    job: Any = JobFactory()
    ItemFactory.create_batch(3, job=job)
    response = api.post(f"/api/jobs/{job.pk}/publish/")
    assert response.status_code == 503
    assert "still a draft" in response.json()["detail"]
    assert Job.objects.get(pk=job.pk).state == JobState.DRAFT


def test_publish_with_a_key_against_a_dead_broker_stores_no_response_so_a_retry_runs(api: APIClient) -> None:
    job: Any = JobFactory()
    ItemFactory.create_batch(3, job=job)
    url = f"/api/jobs/{job.pk}/publish/"
    with override_settings(CELERY_BROKER_URL=_dead_broker_url(), CELERY_TASK_ALWAYS_EAGER=False):
        refused = api.post(url, HTTP_IDEMPOTENCY_KEY="k-1")
    assert refused.status_code == 503 and "still a draft" in refused.json()["detail"]
    assert not IdempotencyRecord.objects.exists()
    retry = api.post(url, HTTP_IDEMPOTENCY_KEY="k-1")  # the broker is back (eager here)
    assert retry.status_code == 202 and "Idempotent-Replayed" not in retry
    assert Job.objects.get(pk=job.pk).state == JobState.PUBLISHED


def test_the_admin_says_the_queue_is_down_instead_of_a_500(
    client: Client, admin_user: Any, labeled_job: Job, broker_down: Any
) -> None:
    client.force_login(admin_user)
    response = client.post(
        "/admin/tasks/job/",
        {"action": "recompute_consensus", "_selected_action": [labeled_job.pk]},
        secure=True,
        follow=True,
    )
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert any("cannot be reached" in m for m in messages), messages
    response = client.post(
        "/admin/tasks/job/",
        {"action": "export_csv", "_selected_action": [labeled_job.pk]},
        secure=True,
        follow=True,
    )
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert any("is recorded, but the task queue" in m for m in messages), messages


def test_an_adaptive_pass_the_broker_refuses_stays_pending(labeled_job: Job, broker_down: Any) -> None:
    assert adaptive_queue.request_adaptive_allocation(job_id=labeled_job.pk) is False
    assert adaptive_queue.has_pending_allocation(labeled_job.pk)  # not lost: the sweep or the next submit asks


def test_publish_with_a_key_whose_task_cannot_be_queued_stores_no_response(api: APIClient, broker_down: Any) -> None:
    """The broker answers the readiness check but refuses the message: still a 503, no response is kept under
    the key, and the retry publishes."""
    job: Any = JobFactory()
    ItemFactory.create_batch(3, job=job)
    url = f"/api/jobs/{job.pk}/publish/"
    refused = api.post(url, HTTP_IDEMPOTENCY_KEY="k-2")
    assert refused.status_code == 503 and "still a draft" in refused.json()["detail"]
    assert not IdempotencyRecord.objects.exists()
    broker_down.undo()
    retry = api.post(url, HTTP_IDEMPOTENCY_KEY="k-2")
    assert retry.status_code == 202 and "Idempotent-Replayed" not in retry
    assert Job.objects.get(pk=job.pk).state == JobState.PUBLISHED
