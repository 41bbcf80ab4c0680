"""The REST API: item import and job progress."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tasks.models import Hit, Item, Job, JobState, TaskKind
from tests.factories import JobFactory, UserFactory
from workforce.models import AuditEvent, Worker

pytestmark = pytest.mark.django_db

GOOD_CSV = b"external_id,text,source\nr-1,Great kettle,shop\nr-2,Broke after a week,shop\nr-3,It is a kettle,forum\n"
BAD_CSV = (
    b"external_id,text\n"
    b"r-1,Fine\n"
    b"r-2,\n"  # line 3: empty text
    b"r-1,Duplicate id\n"  # line 4: repeated id
    b"r-4,too,many,columns\n"  # line 5
)


def import_url(job_id: int) -> str:
    return reverse("api-item-import", args=[job_id])


def progress_url(job_id: int) -> str:
    return reverse("api-job-progress", args=[job_id])


def upload(content: bytes, name: str = "items.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


@pytest.fixture
def text_job(db: Any) -> Job:
    return JobFactory(task_kind=TaskKind.TEXT_CLASSIFICATION)


# --- import ---------------------------------------------------------------------------------------


def test_an_ops_manager_imports_a_csv_and_gets_201_with_counts(api: APIClient, text_job: Job, ops_manager: Any) -> None:
    response = api.post(import_url(text_job.pk), {"file": upload(GOOD_CSV)}, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json() == {"created": 3, "unchanged": 0, "rows": 3, "hits_created": 0}
    items = {i.external_id: i.payload for i in Item.objects.filter(job=text_job)}
    assert items == {
        "r-1": {"text": "Great kettle", "source": "shop"},
        "r-2": {"text": "Broke after a week", "source": "shop"},
        "r-3": {"text": "It is a kettle", "source": "forum"},
    }
    event = AuditEvent.objects.get(action="items.imported")
    assert (event.actor_id, event.actor_label, event.object_id) == (str(ops_manager.pk), "ops", str(text_job.pk))
    assert event.after["created"] == 3


def test_importing_the_same_file_again_is_200_with_nothing_created(api: APIClient, text_job: Job) -> None:
    assert api.post(import_url(text_job.pk), {"file": upload(GOOD_CSV)}, format="multipart").status_code == 201
    response = api.post(import_url(text_job.pk), {"file": upload(GOOD_CSV)}, format="multipart")
    assert response.status_code == 200
    assert response.json() == {"created": 0, "unchanged": 3, "rows": 3, "hits_created": 0}
    assert Item.objects.filter(job=text_job).count() == 3


def test_a_token_authenticated_ops_manager_can_import(ops_manager: Any, text_job: Job) -> None:
    token = Token.objects.create(user=ops_manager)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = client.post(import_url(text_job.pk), {"file": upload(GOOD_CSV)}, format="multipart")
    assert response.status_code == 201
    assert response.json()["created"] == 3


def test_a_wrong_token_is_401(text_job: Job) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.post(import_url(text_job.pk), {"file": upload(GOOD_CSV)}, format="multipart")
    assert response.status_code == 401
    assert not Item.objects.exists()


def test_a_jsonl_file_is_imported_by_its_extension(api: APIClient, text_job: Job) -> None:
    body = b'{"external_id": "j-1", "text": "one"}\n{"id": 2, "text": "two"}\n'
    response = api.post(import_url(text_job.pk), {"file": upload(body, "items.jsonl")}, format="multipart")
    assert response.status_code == 201
    assert set(Item.objects.values_list("external_id", flat=True)) == {"j-1", "2"}


def test_the_format_field_overrides_the_file_name(api: APIClient, text_job: Job) -> None:
    body = b'{"external_id": "j-1", "text": "one"}\n'
    response = api.post(
        import_url(text_job.pk), {"file": upload(body, "export.txt"), "format": "jsonl"}, format="multipart"
    )
    assert response.status_code == 201
    assert Item.objects.get().external_id == "j-1"


def test_a_file_of_unknown_format_is_400_naming_the_problem(api: APIClient, text_job: Job) -> None:
    response = api.post(import_url(text_job.pk), {"file": upload(GOOD_CSV, "items.txt")}, format="multipart")
    assert response.status_code == 400
    assert "Cannot tell the format" in response.json()["detail"]
    assert not Item.objects.exists()


def test_a_csv_with_bad_rows_is_400_listing_line_numbers_and_writes_nothing(api: APIClient, text_job: Job) -> None:
    response = api.post(import_url(text_job.pk), {"file": upload(BAD_CSV)}, format="multipart")
    assert response.status_code == 400
    body = response.json()
    assert body["bad_rows"] == 3
    assert [e["line"] for e in body["errors"]] == [3, 4, 5]
    assert "non-empty 'text'" in body["errors"][0]["message"]
    assert "already appears on line 2" in body["errors"][1]["message"]
    assert "expected 2 columns, found 4" in body["errors"][2]["message"]
    assert "nothing imported" in body["detail"]
    assert not Item.objects.exists()
    assert not AuditEvent.objects.filter(action="items.imported").exists()


def test_a_request_without_a_file_is_400(api: APIClient, text_job: Job) -> None:
    response = api.post(import_url(text_job.pk), {}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()


def test_importing_into_a_published_job_builds_open_hits(
    api: APIClient, make_published_job: Callable[..., Job]
) -> None:
    job = make_published_job(items=2)
    response = api.post(import_url(job.pk), {"file": upload(GOOD_CSV)}, format="multipart")
    assert response.status_code == 201
    assert response.json()["hits_created"] == 3
    assert Hit.objects.filter(job=job, state="open").count() == 5


def test_importing_into_a_cancelled_job_is_400(api: APIClient) -> None:
    job = JobFactory(state=JobState.CANCELLED)
    response = api.post(import_url(job.pk), {"file": upload(GOOD_CSV)}, format="multipart")
    assert response.status_code == 400
    assert "cancelled" in response.json()["detail"]
    assert not Item.objects.exists()


def test_an_unknown_job_is_404(api: APIClient) -> None:
    response = api.post(import_url(987654), {"file": upload(GOOD_CSV)}, format="multipart")
    assert response.status_code == 404
    assert not Item.objects.exists()


def test_an_anonymous_client_gets_401(text_job: Job) -> None:
    response = APIClient().post(import_url(text_job.pk), {"file": upload(GOOD_CSV)}, format="multipart")
    assert response.status_code == 401
    assert not Item.objects.exists()


def test_a_worker_gets_403(text_job: Job, worker: Worker) -> None:
    client = APIClient()
    client.force_authenticate(worker.user)
    response = client.post(import_url(text_job.pk), {"file": upload(GOOD_CSV)}, format="multipart")
    assert response.status_code == 403
    assert not Item.objects.exists()


def test_a_reviewer_without_the_add_item_permission_gets_403(text_job: Job, reviewer: Any) -> None:
    client = APIClient()
    client.force_authenticate(reviewer)
    response = client.post(import_url(text_job.pk), {"file": upload(GOOD_CSV)}, format="multipart")
    assert response.status_code == 403
    assert not Item.objects.exists()


def test_a_staff_user_without_any_role_gets_403(text_job: Job) -> None:
    client = APIClient()
    client.force_authenticate(UserFactory(is_staff=True))
    assert client.post(import_url(text_job.pk), {"file": upload(GOOD_CSV)}, format="multipart").status_code == 403


def test_get_on_the_import_endpoint_is_405(api: APIClient, text_job: Job) -> None:
    assert api.get(import_url(text_job.pk)).status_code == 405


# --- progress -------------------------------------------------------------------------------------


def test_progress_of_a_fresh_published_job(api: APIClient, make_published_job: Callable[..., Job]) -> None:
    job = make_published_job(items=4, redundancy=3)
    response = api.get(progress_url(job.pk))
    assert response.status_code == 200
    assert response.json() == {
        "job": job.pk,
        "state": "published",
        "hits": 4,
        "hits_complete": 0,
        "answers_wanted": 12,
        "answers_submitted": 0,
        "percent": 0,
    }


def test_progress_counts_submitted_work(
    api: APIClient, make_published_job: Callable[..., Job], make_worker: Callable[..., Worker]
) -> None:
    from tasks.models import HitItem
    from tasks.services.collection import submit_assignment
    from tasks.services.pool import assign_next_hit

    job = make_published_job(items=2, redundancy=1)
    worker = make_worker()
    assignment = assign_next_hit(job=job, worker=worker)
    item_id = HitItem.objects.get(hit_id=assignment.hit_id).item_id
    submit_assignment(assignment=assignment, worker=worker, answers={item_id: "pos"})
    body = api.get(progress_url(job.pk)).json()
    assert (body["hits_complete"], body["answers_wanted"], body["answers_submitted"], body["percent"]) == (1, 2, 1, 50)


def test_progress_of_a_draft_job_is_all_zero(api: APIClient, text_job: Job) -> None:
    body = api.get(progress_url(text_job.pk)).json()
    assert body["state"] == "draft"
    assert (body["hits"], body["answers_wanted"], body["percent"]) == (0, 0, 0)


def test_a_reviewer_may_read_progress_but_a_worker_may_not(text_job: Job, reviewer: Any, worker: Worker) -> None:
    client = APIClient()
    client.force_authenticate(reviewer)
    assert client.get(progress_url(text_job.pk)).status_code == 200
    client.force_authenticate(worker.user)
    assert client.get(progress_url(text_job.pk)).status_code == 403
    assert APIClient().get(progress_url(text_job.pk)).status_code == 401


def test_progress_of_an_unknown_job_is_404(api: APIClient) -> None:
    assert api.get(progress_url(987654)).status_code == 404
