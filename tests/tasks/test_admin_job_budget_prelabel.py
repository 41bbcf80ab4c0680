"""The job form's budget cap and pre-label model: the same check as the API (``check_budget_and_prelabels``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tasks.models import Job
from tasks.services.budget import reserve_budget
from tasks.services.errors import ServiceError
from tasks.services.jobs import configure_job
from tasks.services.predictions import import_predictions_from_text
from tests.factories import ItemFactory, JobFactory
from tests.tasks.test_admin import job_form_data
from workforce.audit import Actor

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")


def _job(**fields: Any) -> Job:
    job = JobFactory(name="Admin-made job", labels=["yes", "no"], **fields)
    ItemFactory(job=job, external_id="i0")
    csv = "external_id,label,score\ni0,yes,0.9\n"
    import_predictions_from_text(job=job, text=csv, filename="p.csv", model_name="m1", actor=SYSTEM)
    return job


def _post(client: Client, job: Job, **fields: str) -> Any:
    return client.post(reverse("admin:tasks_job_change", args=[job.pk]), job_form_data(**fields))


def test_the_form_refuses_a_pre_label_model_without_predictions_for_the_job(ops_client: Client) -> None:
    job = _job()
    refused = _post(ops_client, job, prelabel_model="m2")
    assert refused.status_code == 200
    assert "This job has no predictions of the model &#x27;m2&#x27;" in refused.content.decode()
    assert Job.objects.get(pk=job.pk).prelabel_model == ""
    assert _post(ops_client, job, prelabel_model="m1").status_code == 302
    assert Job.objects.get(pk=job.pk).prelabel_model == "m1"


def test_the_form_refuses_a_cap_below_what_is_reserved(ops_client: Client) -> None:
    job = _job(budget_cap=Decimal("5"))
    reserve_budget(job=job, amount=Decimal("2.50"), key="k", actor=SYSTEM)
    refused = _post(ops_client, job, budget_cap="2.49")
    assert refused.status_code == 200
    assert "2.5000 is already reserved for this job; the cap cannot be lower." in refused.content.decode()
    assert _post(ops_client, job, budget_cap="2.50").status_code == 302
    assert Job.objects.get(pk=job.pk).budget_cap == Decimal("2.50")


def test_configure_job_refuses_what_the_form_and_the_api_refuse() -> None:
    job = _job(budget_cap=Decimal("5"))
    reserve_budget(job=job, amount=Decimal("2.50"), key="k", actor=SYSTEM)
    for field, value, message in (
        ("budget_cap", Decimal("2.49"), "already reserved"),
        ("budget_cap", 3.0, "must be a decimal amount"),  # a float from code is not money
        ("prelabel_model", "m2", "no predictions of the model 'm2'"),
    ):
        edited = Job.objects.get(pk=job.pk)
        setattr(edited, field, value)
        with pytest.raises(ServiceError, match=message):
            configure_job(job=edited, actor=SYSTEM)
    stored = Job.objects.get(pk=job.pk)
    assert (stored.budget_cap, stored.prelabel_model) == (Decimal("5"), "")


def test_a_job_that_already_shows_a_model_keeps_it_when_other_fields_change() -> None:
    job = _job(prelabel_model="gone")  # set before this check existed; no predictions of "gone"
    job.name = "Renamed"
    configure_job(job=job, actor=SYSTEM)
    assert Job.objects.get(pk=job.pk).name == "Renamed"
