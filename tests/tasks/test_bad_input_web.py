"""Tampered or out-of-range input on the API, the admin and the worker pages gets a clear refusal (400, 404,
a form error or a message), never a 500, and writes nothing."""

from __future__ import annotations

import base64
import io
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from qualification.errors import InvalidTest
from qualification.models import QualificationTest
from qualification.services import create_test
from tasks.models import Assignment, ConsensusLabel, Item, Job, MonthlyBudget, Prediction
from tasks.services.errors import ImportValidationError
from tasks.services.predictions import import_predictions
from tests.conftest import SYSTEM
from tests.factories import ItemFactory, JobFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(ops_manager: Any, login_client: Any) -> Client:
    return login_client(ops_manager)


def _cursor(position: str) -> str:
    return base64.b64encode(f"p={position}".encode()).decode()


@pytest.mark.parametrize("position", ["abc", "1.5", "%00", "99999999999999999999999"])
def test_a_tampered_cursor_is_a_404_on_every_list(api: APIClient, position: str) -> None:
    job = JobFactory()
    for path in ("/api/jobs/", f"/api/jobs/{job.pk}/items/", f"/api/jobs/{job.pk}/labels/"):
        response = api.get(path, {"cursor": _cursor(position)})
        assert response.status_code == 404 and response.json() == {"detail": "Invalid cursor"}, path


@pytest.mark.parametrize(
    "requirement",
    [{"kind": ["test"]}, {"kind": {"a": 1}}, {"kind": "test", "test": 99999999999999999999999}],
    ids=["kind-list", "kind-object", "huge-test-id"],
)
def test_malformed_requirements_are_a_400(api: APIClient, requirement: dict[str, Any]) -> None:
    body = {"name": "t", "task_kind": "text_classification", "labels": ["a", "b"], "requirements": [requirement]}
    response = api.post("/api/jobs/", body, format="json")
    assert response.status_code == 400 and "requirements" in response.json()
    assert not Job.objects.exists()


@pytest.mark.parametrize("duration", ["-1", "0", "00:00:10", "400 00:00:00"])
def test_a_job_needs_a_time_a_worker_can_work_in(api: APIClient, duration: str) -> None:
    body = {"name": "t", "task_kind": "text_classification", "labels": ["a", "b"], "assignment_duration": duration}
    response = api.post("/api/jobs/", body, format="json")
    assert response.status_code == 400 and "from 30 seconds to 365 days" in str(response.json()["assignment_duration"])
    assert api.post("/api/jobs/", {**body, "assignment_duration": "00:05:00"}, format="json").status_code == 201


@pytest.mark.parametrize(
    ("line", "reason"),
    [('{"external_id": "d", "text": ' + "[" * 100_000 + "]" * 100_000 + "}", "the JSON is nested too deeply"),
     ('{"external_id": "n", "x": NaN}', "NaN is not a number that can be stored"),
     ('{"external_id": "i", "x": 1e999}', "the number 1e999 is too large to store")],
    ids=["nested", "nan", "overflow"],
)  # fmt: skip
def test_unreadable_json_lines_are_row_errors(api: APIClient, line: str, reason: str) -> None:
    job = JobFactory()
    upload = SimpleUploadedFile("items.jsonl", (line + "\n").encode())
    response = api.post(reverse("api-item-import", args=[job.pk]), {"file": upload}, format="multipart")
    assert response.status_code == 400
    assert response.json()["errors"][0] == {"line": 1, "message": reason}
    assert not Item.objects.exists()


def test_a_prediction_file_that_is_not_utf8_is_a_row_error() -> None:
    job = JobFactory()
    ItemFactory(job=job, external_id="a")
    raw = b"external_id,label,score\na,pos,0.9\n\xff\xfe,neg,0.1\n"
    with pytest.raises(ImportValidationError) as refused:
        import_predictions(job=job, stream=io.BytesIO(raw), filename="p.csv", model_name="m", actor=SYSTEM)
    assert refused.value.errors[0].line == 3 and "not UTF-8" in refused.value.errors[0].message
    assert not Prediction.objects.exists()


def test_a_worker_submit_with_a_tampered_field_name_is_not_a_500(make_published_job: Any, make_worker: Any) -> None:
    job = make_published_job(items=1)
    worker = make_worker()
    client = Client(raise_request_exception=False)
    client.force_login(worker.user)
    started = client.post(reverse("start-job", args=[job.pk]))
    assignment = Assignment.objects.get(worker=worker)
    assert started.status_code == 302
    response = client.post(reverse("submit-task", args=[assignment.uuid]), {"answer-\u00b2": "pos"})
    assert response.status_code == 302 and response["Location"] == reverse("task", args=[assignment.uuid])
    assignment.refresh_from_db()
    assert assignment.state == "accepted" and not assignment.answers.exists()


@pytest.mark.parametrize("object_id", ["abc", "3x", "\u00b2", "99999999999999999999999"])
def test_the_job_page_with_a_tampered_id_says_it_does_not_exist(admin: Client, object_id: str) -> None:
    response = admin.get(f"/admin/tasks/job/{object_id}/change/")
    assert response.status_code == 302
    assert any("exist" in str(m) and "ID" in str(m) for m in get_messages(response.wsgi_request))


def test_recompute_consensus_on_a_job_without_answers_says_so(admin: Client) -> None:
    job = JobFactory()
    response = admin.post(
        reverse("admin:tasks_job_changelist"), {"action": "recompute_consensus", "_selected_action": [job.pk]}
    )
    assert response.status_code == 302
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert said == [f"{job} has no answers yet: nothing to aggregate."]
    assert not ConsensusLabel.objects.exists()


def test_a_negative_monthly_cap_is_a_form_error(admin: Client) -> None:
    response = admin.post(
        reverse("admin:tasks_monthlybudget_add"), {"month": "2026-11-01", "cap": "-5", "currency": "USD"}
    )
    assert response.status_code == 200 and "cannot be negative" in response.content.decode()
    assert not MonthlyBudget.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [("time_limit", timedelta(minutes=-3)), ("time_limit", timedelta(0)), ("retry_delay", timedelta(hours=-1))],
)
def test_a_qualification_test_needs_a_usable_time_limit_and_retry_delay(field: str, value: timedelta) -> None:
    with pytest.raises(InvalidTest, match=field):
        create_test(actor=SYSTEM, name="Timing", questions=[], **{field: value})
    assert not QualificationTest.objects.exists()
