"""JSON nested too deeply to read is a clear refusal (API 400, admin form error), never a 500 or a half-written row."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from tasks.models import Item, Job
from tests.factories import JobFactory
from tests.tasks.test_admin import job_form_data
from workforce.admin_fields import JSON_NESTED_TOO_DEEPLY, StorableJSONField

pytestmark = pytest.mark.django_db

DEEP = "[" * 5000 + "]" * 5000
NEW_JOB = {"name": "Sentiment", "task_kind": "text_classification", "labels": ["pos", "neg"], "reward": "0.10"}


def test_the_api_refuses_json_nested_too_deeply_with_a_400_and_creates_nothing(api: APIClient) -> None:
    body = '{"name": "Deep", "task_kind": "text_classification", "labels": ' + DEEP + "}"
    response = api.post("/api/jobs/", data=body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "nested too deeply" in response.json()["detail"]
    assert not Job.objects.exists()


def test_the_api_still_reports_broken_json_and_still_reads_forms(api: APIClient) -> None:
    broken = api.post("/api/jobs/", data='{"name": ', content_type="application/json")
    assert broken.status_code == 400 and "JSON parse error" in broken.json()["detail"]
    assert api.post("/api/jobs/", NEW_JOB, format="json").status_code == 201
    multipart = api.post("/api/jobs/", {**NEW_JOB, "name": "Form-made", "labels": ["pos", "neg"]}, format="multipart")
    assert multipart.status_code != 415


@pytest.mark.parametrize("field", ["labels", "requirements"])
def test_the_job_form_refuses_json_nested_too_deeply_with_a_form_error(ops_client: Client, field: str) -> None:
    response = ops_client.post(reverse("admin:tasks_job_add"), job_form_data(**{field: DEEP}))
    assert response.status_code == 200
    assert JSON_NESTED_TOO_DEEPLY in response.context["adminform"].form.errors[field][0]
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        (DEEP, JSON_NESTED_TOO_DEEPLY),
        ("[" * 101 + "]" * 101, JSON_NESTED_TOO_DEEPLY),
        ('{"a": NaN}', "NaN"),
        ("[1e999]", "1e999"),
        ("[" + "9" * 5000 + "]", "Enter a valid JSON"),
        ("[1, ", "Enter a valid JSON"),
    ],
)
def test_the_json_form_field_refuses_what_cannot_be_read_or_stored_with_a_sentence(typed: str, message: str) -> None:
    field = StorableJSONField(required=False)
    with pytest.raises(Exception) as refused:
        field.clean(typed)
    assert message in " ".join(refused.value.messages)  # type: ignore[attr-defined]
    assert str(field.bound_data(typed, None)) == typed  # shown back as typed on the page
    assert field.has_changed(None, typed)


def test_the_json_form_field_still_reads_json() -> None:
    field = StorableJSONField(required=False)
    assert field.clean('{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}
    assert field.clean("") is None
    assert field.clean("[" * 100 + "]" * 100) is not None  # 100 levels are still read


def test_nested_json_posted_to_the_item_import_endpoint_is_a_400(api: APIClient) -> None:
    """The item endpoint names its own parsers; its JSON parser is the safe one too."""
    job = JobFactory()
    response = api.post(f"/api/jobs/{job.pk}/items/", data='{"items": ' + DEEP + "}", content_type="application/json")
    assert response.status_code == 400 and "nested too deeply" in str(response.json())
    assert not Item.objects.filter(job=job).exists()


@pytest.mark.parametrize("depth", [101, 400, 800])
def test_json_deeper_than_the_limit_but_readable_is_a_400_on_the_item_endpoint(api: APIClient, depth: int) -> None:
    """Python reads 400-800 levels, but code that walks the row recursively could not: refused when read."""
    job = JobFactory()
    nested = "[" * depth + "]" * depth
    response = api.post(f"/api/jobs/{job.pk}/items/", data='{"items": ' + nested + "}", content_type="application/json")
    assert response.status_code == 400 and "nested too deeply" in str(response.json())
    assert not Item.objects.filter(job=job).exists()


def test_an_item_import_line_nested_deeper_than_the_limit_is_refused_with_its_reason() -> None:
    from tasks.services.imports import _has_nul, load_json_line

    with pytest.raises(ValueError, match="nested too deeply"):
        load_json_line('{"text": ' + "[" * 500 + "]" * 500 + "}")
    deep: Any = "a\x00"
    for _ in range(5000):
        deep = [deep]
    assert _has_nul(deep)  # walked without recursion
