"""The bugs the API fuzz run found, pinned: ids out of the database's range and the documented 202 bodies."""

from __future__ import annotations

from typing import Any, cast

import pytest
from rest_framework.test import APIClient

from tasks.api.converters import MAX_ID
from tasks.models import DatasetVersion, Item, Job, JobState
from tests.factories import ItemFactory, JobFactory

pytestmark = pytest.mark.django_db

TOO_BIG = [str(MAX_ID + 1), "9" * 25]
ANY_NUL_MESSAGE = "the row contains a NUL character (\\u0000), which cannot be stored"


@pytest.fixture
def versioned(api: APIClient, labeled_job: Job) -> str:
    base = f"/api/jobs/{labeled_job.pk}/versions/"
    assert api.post(base, {}, format="json").status_code == 201
    return base


@pytest.mark.parametrize("number", TOO_BIG)
@pytest.mark.parametrize("suffix", ["", "download/", "diff/?against=1"])
def test_a_version_number_beyond_the_database_range_is_404(
    api: APIClient, versioned: str, number: str, suffix: str
) -> None:
    assert api.get(f"{versioned}{number}/{suffix}").status_code == 404


@pytest.mark.parametrize("path", ["jobs/{id}/", "jobs/{id}/items/", "jobs/{id}/exports/1/", "jobs/1/exports/{id}/"])
def test_any_id_beyond_the_database_range_is_404(api: APIClient, path: str) -> None:
    for big in TOO_BIG:
        assert api.get("/api/" + path.format(id=big)).status_code == 404


def test_the_largest_id_the_database_holds_is_an_ordinary_404(api: APIClient) -> None:
    assert api.get(f"/api/jobs/{MAX_ID}/versions/{MAX_ID}/").status_code == 404


@pytest.mark.parametrize("against", [*TOO_BIG, "0", "-1", "one", ""])
def test_a_diff_against_a_bad_version_number_is_400_naming_the_parameter(
    api: APIClient, versioned: str, against: str
) -> None:
    response = api.get(f"{versioned}1/diff/", {"against": against})
    assert response.status_code == 400
    assert list(response.json()) == ["against"]


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_export_of_a_version_beyond_the_database_range_is_400(api: APIClient, labeled_job: Job, method: str) -> None:
    url = f"/api/jobs/{labeled_job.pk}/export/"
    response = api.get(url, {"version": TOO_BIG[0]}) if method == "get" else api.post(url, {"version": TOO_BIG[0]})
    assert response.status_code == 400
    assert "version" in response.json()
    assert not DatasetVersion.objects.exists()


def test_publish_and_consensus_answer_202_with_the_documented_body(api: APIClient, labeled_job: Any) -> None:
    draft = cast(Job, JobFactory(state=JobState.DRAFT))
    ItemFactory.create_batch(2, job=draft)
    published = api.post(f"/api/jobs/{draft.pk}/publish/")
    assert (published.status_code, published.json()) == (202, {"job": draft.pk, "detail": "Publishing started."})
    consensus = api.post(f"/api/jobs/{labeled_job.pk}/consensus/")
    assert (consensus.status_code, consensus.json()) == (202, {"job": labeled_job.pk, "detail": "Consensus queued."})


@pytest.mark.parametrize(
    "row",
    [
        {"external_id": "a\x00b", "text": "fine"},
        {"external_id": "ab", "text": "x\x00y"},
        {"external_id": "ab", "text": "xy", "meta": {"k\x00": ["v"]}},
    ],
)
def test_an_item_with_a_nul_character_is_a_400_row_error_and_nothing_is_imported(
    api: APIClient, row: dict[str, Any]
) -> None:
    job = cast(Job, JobFactory(state=JobState.DRAFT))
    response = api.post(
        f"/api/jobs/{job.pk}/items/", {"items": [{"external_id": "ok", "text": "t"}, row]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [{"line": 2, "message": ANY_NUL_MESSAGE}]
    assert not Item.objects.exists()


def test_an_idempotency_key_with_control_characters_is_400(api: APIClient) -> None:
    job = cast(Job, JobFactory(state=JobState.DRAFT))
    ItemFactory.create_batch(2, job=job)
    response = api.post(f"/api/jobs/{job.pk}/publish/", HTTP_IDEMPOTENCY_KEY="key\x00")
    assert response.status_code == 400
    assert "printable" in response.json()["Idempotency-Key"][0]
    assert Job.objects.get(pk=job.pk).state == JobState.DRAFT
