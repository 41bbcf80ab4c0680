"""Jobs over the API: create, configure, lifecycle, status, idempotent publish, validation."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tasks.models import Hit, IdempotencyRecord, Job, JobInstructions, JobState
from tests.factories import ItemFactory, JobFactory
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db

NEW_JOB = {"name": "Sentiment", "task_kind": "text_classification", "labels": ["pos", "neg"], "reward": "0.10"}


def test_an_ops_manager_creates_a_job_with_audit_and_first_instructions(api: APIClient, ops_manager: Any) -> None:
    response = api.post("/api/jobs/", {**NEW_JOB, "instructions": "Pick *one*."}, format="json")
    assert response.status_code == 201, response.content
    job = Job.objects.get(pk=response.json()["id"])
    assert (job.state, job.labels, str(job.reward), job.created_by) == ("draft", ["pos", "neg"], "0.1000", ops_manager)
    assert response.json()["instructions_version"] == 1
    assert JobInstructions.objects.get(job=job).text == "Pick *one*."
    assert AuditEvent.objects.filter(action="job.created", object_id=str(job.pk)).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**NEW_JOB, "labels": ["pos"]}, "labels"),
        ({**NEW_JOB, "labels": ["pos", "pos"]}, "labels"),
        ({**NEW_JOB, "task_kind": "video"}, "task_kind"),
        ({**NEW_JOB, "redundancy": 0}, "redundancy"),
        ({**NEW_JOB, "reward": "-1"}, "reward"),
        ({**NEW_JOB, "consensus_method": "coin"}, "consensus_method"),
        ({**NEW_JOB, "requirements": [{"kind": "telepathy"}]}, "requirements"),
        ({"labels": ["a", "b"]}, "name"),
    ],
)
def test_bad_job_fields_are_400_with_the_field_named(api: APIClient, body: dict[str, Any], field: str) -> None:
    response = api.post("/api/jobs/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Job.objects.exists()


def test_structural_fields_of_a_published_job_cannot_change(api: APIClient, make_published_job: Any) -> None:
    job = make_published_job(items=2)
    response = api.patch(f"/api/jobs/{job.pk}/", {"redundancy": 5}, format="json")
    assert response.status_code == 400
    assert "redundancy cannot change" in response.json()["detail"]


def test_changing_a_running_jobs_instructions_needs_confirmation(api: APIClient, make_published_job: Any) -> None:
    job = make_published_job(items=2)
    refused = api.patch(f"/api/jobs/{job.pk}/", {"instructions": "New rules"}, format="json")
    assert refused.status_code == 400 and "Confirm the change" in refused.json()["detail"]
    confirmed = api.patch(
        f"/api/jobs/{job.pk}/", {"instructions": "New rules", "confirm_instructions_change": True}, format="json"
    )
    assert confirmed.status_code == 200, confirmed.content
    assert confirmed.json()["instructions_version"] == 1
    job.refresh_from_db()
    assert job.instructions == "New rules"


def test_publish_with_an_idempotency_key_runs_once_and_replays(
    api: APIClient, django_capture_on_commit_callbacks: Any
) -> None:
    job = JobFactory()
    ItemFactory.create_batch(3, job=job)
    url = f"/api/jobs/{job.pk}/publish/"
    with django_capture_on_commit_callbacks(execute=True):
        first = api.post(url, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == 202, first.content
    assert Job.objects.get(pk=job.pk).state == JobState.PUBLISHED
    hits = Hit.objects.filter(job=job).count()
    with django_capture_on_commit_callbacks(execute=True):
        retry = api.post(url, HTTP_IDEMPOTENCY_KEY="k-1")
    assert retry.status_code == 202 and retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert Hit.objects.filter(job=job).count() == hits == 3
    assert AuditEvent.objects.filter(action="job.published").count() == 1
    # Without the key, a second publish is refused by the state machine.
    again = api.post(url)
    assert again.status_code == 400 and "only draft jobs" in again.json()["detail"]


def test_a_refused_publish_is_stored_and_replayed_too(api: APIClient) -> None:
    job = JobFactory()  # no items
    first = api.post(f"/api/jobs/{job.pk}/publish/", HTTP_IDEMPOTENCY_KEY="k")
    assert first.status_code == 400 and "Import items" in first.json()["detail"]
    assert IdempotencyRecord.objects.get(key="k").status_code == 400


def test_an_idempotency_key_reused_for_another_request_is_409(api: APIClient) -> None:
    job = JobFactory()
    url = f"/api/jobs/{job.pk}/items/"
    assert api.post(url, {"items": [{"external_id": "a", "text": "x"}]}, format="json", HTTP_IDEMPOTENCY_KEY="z")
    other = api.post(url, {"items": [{"external_id": "b", "text": "y"}]}, format="json", HTTP_IDEMPOTENCY_KEY="z")
    assert other.status_code == 409
    assert list(job.items.values_list("external_id", flat=True)) == ["a"]


def test_pause_resume_cancel_and_status(api: APIClient, make_published_job: Any) -> None:
    job = make_published_job(items=3)
    assert api.post(f"/api/jobs/{job.pk}/pause/").json()["state"] == "paused"
    assert api.post(f"/api/jobs/{job.pk}/pause/").status_code == 400
    assert api.post(f"/api/jobs/{job.pk}/resume/").json()["state"] == "published"
    status = api.get(f"/api/jobs/{job.pk}/status/").json()
    assert status == {
        "job": job.pk,
        "state": "published",
        "hits": 3,
        "hits_complete": 0,
        "answers_wanted": 9,
        "answers_submitted": 0,
        "percent": 0,
        "labeled_items": 0,
        "confident_items": 0,
        "adaptive": None,
    }
    assert api.post(f"/api/jobs/{job.pk}/cancel/").json()["state"] == "cancelled"


def test_token_authentication_works_and_anonymous_is_refused(ops_manager: Any) -> None:
    job = JobFactory()
    token = Token.objects.create(user=ops_manager)
    client = APIClient()
    assert client.get(f"/api/jobs/{job.pk}/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get(f"/api/jobs/{job.pk}/").json()["name"] == job.name


def test_session_writes_need_the_csrf_token(ops_manager: Any) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(ops_manager)
    response = client.post("/api/jobs/", NEW_JOB, format="json")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]


def test_roles_reviewer_and_finance_read_jobs_but_cannot_write(
    as_user: Any, reviewer: Any, finance: Any, worker: Any
) -> None:
    job = JobFactory()
    for user in (reviewer, finance):
        client = as_user(user)
        assert client.get(f"/api/jobs/{job.pk}/").status_code == 200
        assert client.post("/api/jobs/", NEW_JOB, format="json").status_code == 403
        assert client.post(f"/api/jobs/{job.pk}/pause/").status_code == 403
    crowd = as_user(worker.user)
    assert crowd.get(f"/api/jobs/{job.pk}/").status_code == 403
    assert crowd.get("/api/jobs/").status_code == 403


def test_job_list_is_paged_with_a_cursor(api: APIClient) -> None:
    JobFactory.create_batch(3)
    page = api.get("/api/jobs/", {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"]
    rest = api.get(page["next"]).json()
    assert len(rest["results"]) == 1 and rest["next"] is None
    assert api.get("/api/jobs/", {"page_size": 5000}).status_code == 200  # capped at max_page_size


def test_schema_and_swagger_page_are_served(api: APIClient) -> None:
    schema = api.get(reverse("api-schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/jobs/{id}/publish/" in paths and "/api/jobs/{job_id}/versions/{number}/diff/" in paths
    page = api.get(reverse("api-docs"))
    assert page.status_code == 200
    assert b"cdn" not in page.content.lower() and b"/static/drf_spectacular_sidecar/" in page.content


def test_the_api_root_points_staff_to_the_jobs_the_schema_and_the_docs(api: APIClient) -> None:
    body = api.get("/api/").json()
    assert set(body) == {"jobs", "schema", "docs"}
    assert body["jobs"].endswith("/api/jobs/") and body["docs"].endswith("/api/docs/")
    assert api.get(body["jobs"]).status_code == 200


def test_the_spectacular_command_writes_a_valid_schema_without_warnings(tmp_path: Any) -> None:
    from django.core.management import call_command

    out = tmp_path / "schema.yml"
    call_command("spectacular", "--file", str(out), "--validate", "--fail-on-warn")
    text = out.read_text()
    assert text.startswith("openapi: 3") and "/api/jobs/{job_id}/export/:" in text
