"""The budget cap and the pre-label model over the jobs API: writable by ops managers, checked like the admin."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from tasks.models import Job
from tasks.services.budget import reserve_budget
from tasks.services.predictions import import_predictions_from_text
from tests.factories import ItemFactory, JobFactory
from workforce.audit import Actor
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")
NEW_JOB = {"name": "Sentiment", "task_kind": "text_classification", "labels": ["pos", "neg"], "reward": "0.10"}


def _job_with_predictions(model_name: str = "m1", **fields: Any) -> Job:
    job = JobFactory(labels=["pos", "neg"], **fields)
    ItemFactory(job=job, external_id="i0")
    csv = "external_id,label,score\ni0,pos,0.9\n"
    import_predictions_from_text(job=job, text=csv, filename="p.csv", model_name=model_name, actor=SYSTEM)
    return job


def _stored_cap(job: Job) -> Decimal | None:
    return Job.objects.values_list("budget_cap", flat=True).get(pk=job.pk)


def test_a_job_is_created_with_a_budget_cap_given_as_a_decimal_string(api: APIClient) -> None:
    response = api.post("/api/jobs/", {**NEW_JOB, "budget_cap": "250.10"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["budget_cap"] == "250.1000"  # a string out, never a float
    job = Job.objects.get(pk=response.json()["id"])
    assert job.budget_cap == Decimal("250.10")
    assert AuditEvent.objects.get(action="job.created", object_id=str(job.pk)).after["budget_cap"] == "250.1000"


@pytest.mark.parametrize(
    ("sent", "stored"),
    [(0.3, Decimal("0.3")), (1234567890.1234, Decimal("1234567890.1234")), (0, Decimal("0")), ("7", Decimal("7"))],
)
def test_a_budget_cap_sent_as_a_json_number_is_kept_exactly(api: APIClient, sent: Any, stored: Decimal) -> None:
    job = JobFactory()
    response = api.patch(f"/api/jobs/{job.pk}/", {"budget_cap": sent}, format="json")
    assert response.status_code == 200, response.content
    assert _stored_cap(job) == stored


def test_a_budget_cap_can_be_cleared_with_null(api: APIClient) -> None:
    job = JobFactory(budget_cap=Decimal("10"))
    response = api.patch(f"/api/jobs/{job.pk}/", {"budget_cap": None}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["budget_cap"] is None and _stored_cap(job) is None


@pytest.mark.parametrize(
    ("sent", "message"),
    [
        ("-0.01", "greater than or equal to 0"),
        ("abc", "A valid number is required"),
        ("NaN", "A valid number is required"),
        ("1.00001", "no more than 4 decimal places"),
        ("123456789012.5", "no more than 10 digits before the decimal point"),
    ],
)
def test_a_bad_budget_cap_is_a_400_naming_the_field(api: APIClient, sent: str, message: str) -> None:
    job = JobFactory(budget_cap=Decimal("10"))
    response = api.patch(f"/api/jobs/{job.pk}/", {"budget_cap": sent}, format="json")
    assert response.status_code == 400
    assert message in " ".join(response.json()["budget_cap"])
    assert _stored_cap(job) == Decimal("10")


def test_a_cap_below_what_is_already_reserved_is_refused_and_one_at_it_is_accepted(api: APIClient) -> None:
    job = JobFactory(budget_cap=Decimal("100"))
    reserve_budget(job=job, amount=Decimal("40.25"), key="k", actor=SYSTEM)
    refused = api.patch(f"/api/jobs/{job.pk}/", {"budget_cap": "40.24"}, format="json")
    assert refused.status_code == 400
    assert refused.json()["budget_cap"] == ["40.2500 is already reserved for this job; the cap cannot be lower."]
    assert _stored_cap(job) == Decimal("100")
    accepted = api.patch(f"/api/jobs/{job.pk}/", {"budget_cap": "40.25"}, format="json")
    assert accepted.status_code == 200, accepted.content
    assert _stored_cap(job) == Decimal("40.25")
    event = AuditEvent.objects.get(action="job.configured", object_id=str(job.pk))
    assert (event.before, event.after) == ({"budget_cap": "100.0000"}, {"budget_cap": "40.2500"})


def test_the_pre_label_model_must_have_predictions_for_this_job(api: APIClient) -> None:
    job = _job_with_predictions("m1")
    other = _job_with_predictions("m2")  # another job's model does not count
    for name in ("m2", "nope"):
        refused = api.patch(f"/api/jobs/{job.pk}/", {"prelabel_model": name}, format="json")
        assert refused.status_code == 400
        assert "This job has no predictions of the model" in refused.json()["prelabel_model"][0]
    assert Job.objects.get(pk=job.pk).prelabel_model == ""
    accepted = api.patch(f"/api/jobs/{job.pk}/", {"prelabel_model": "m1"}, format="json")
    assert accepted.status_code == 200, accepted.content
    assert accepted.json()["prelabel_model"] == "m1" and Job.objects.get(pk=job.pk).prelabel_model == "m1"
    off = api.patch(f"/api/jobs/{job.pk}/", {"prelabel_model": ""}, format="json")
    assert off.status_code == 200 and Job.objects.get(pk=job.pk).prelabel_model == ""
    assert Job.objects.get(pk=other.pk).prelabel_model == ""


def test_a_new_job_cannot_name_a_pre_label_model_since_it_has_no_predictions_yet(api: APIClient) -> None:
    response = api.post("/api/jobs/", {**NEW_JOB, "prelabel_model": "m1"}, format="json")
    assert response.status_code == 400 and "prelabel_model" in response.json()
    assert not Job.objects.exists()


def test_only_ops_managers_may_write_the_budget_cap_and_the_pre_label_model(
    as_user: Any, reviewer: Any, finance: Any
) -> None:
    job = _job_with_predictions("m1", budget_cap=Decimal("10"))
    for user in (reviewer, finance):
        client = as_user(user)
        assert client.get(f"/api/jobs/{job.pk}/").json()["budget_cap"] == "10.0000"
        for body in ({"budget_cap": "20"}, {"prelabel_model": "m1"}):
            assert client.patch(f"/api/jobs/{job.pk}/", body, format="json").status_code == 403
    job.refresh_from_db()
    assert (job.budget_cap, job.prelabel_model) == (Decimal("10"), "")


def test_the_schema_describes_both_fields_as_writable(api: APIClient) -> None:
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    patch = schema["components"]["schemas"]["PatchedJobRequest"]["properties"]
    assert patch["budget_cap"]["type"] == "string" and patch["budget_cap"]["format"] == "decimal"
    assert patch["budget_cap"]["nullable"] is True
    assert patch["prelabel_model"]["maxLength"] == 100
