"""Items, assignments, labels, worker scores, costs, exports and dataset versions over the API."""

from __future__ import annotations

import csv
import hashlib
import io
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from tasks.models import ConsensusLabel, DatasetVersion, Job, LabelExport
from tests.factories import ItemFactory, JobFactory
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_bulk_import_accepts_json_items_and_replays_with_the_same_key(api: APIClient) -> None:
    job = JobFactory()
    url = f"/api/jobs/{job.pk}/items/"
    body = {"items": [{"external_id": "a", "text": "one"}, {"external_id": "b", "text": "two"}]}
    first = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    assert first.status_code == 201 and first.json()["created"] == 2
    again = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="batch-1")
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert AuditEvent.objects.filter(action="items.imported").count() <= 1
    assert job.items.count() == 2


def test_bulk_import_of_a_file_and_its_row_errors(api: APIClient) -> None:
    job = JobFactory()
    url = f"/api/jobs/{job.pk}/items/"
    good = SimpleUploadedFile("x.csv", b"external_id,text\nr-1,hello\n", content_type="text/csv")
    assert api.post(url, {"file": good}, format="multipart").json()["created"] == 1
    bad = SimpleUploadedFile("y.csv", b"external_id,text\nr-2,\n", content_type="text/csv")
    response = api.post(url, {"file": bad}, format="multipart")
    assert response.status_code == 400 and response.json()["errors"][0]["line"] == 2
    neither = api.post(url, {}, format="json")
    assert neither.status_code == 400 and "either a file" in str(neither.json())


def test_item_list_filters(api: APIClient, labeled_job: Job) -> None:
    ItemFactory(job=labeled_job, external_id="unlabeled")
    url = f"/api/jobs/{labeled_job.pk}/items/"
    assert len(api.get(url).json()["results"]) == 5
    assert [i["external_id"] for i in api.get(url, {"labeled": "false"}).json()["results"]] == ["unlabeled"]
    assert len(api.get(url, {"labeled": "true"}).json()["results"]) == 4
    assert len(api.get(url, {"external_id": "unlabeled"}).json()["results"]) == 1
    assert api.get(url, {"is_gold": "maybe"}).status_code == 400


def test_assignments_list_with_state_filter(api: APIClient, labeled_job: Job) -> None:
    url = f"/api/jobs/{labeled_job.pk}/assignments/"
    rows = api.get(url, {"state": "submitted"}).json()["results"]
    assert len(rows) == 12 and {r["state"] for r in rows} == {"submitted"}
    assert api.get(url, {"state": "accepted"}).json()["results"] == []
    assert api.get(url, {"state": "bogus"}).status_code == 400


def test_labels_are_paged_and_filtered_by_confidence(api: APIClient, labeled_job: Job) -> None:
    low = ConsensusLabel.objects.filter(job=labeled_job).order_by("item_id").first()
    ConsensusLabel.objects.filter(pk=low.pk).update(confidence=0.3)
    url = f"/api/jobs/{labeled_job.pk}/labels/"
    page = api.get(url, {"page_size": 3}).json()
    assert len(page["results"]) == 3 and page["next"]
    assert len(api.get(url, {"min_confidence": 0.5}).json()["results"]) == 3
    assert [r["item"] for r in api.get(url, {"max_confidence": 0.5}).json()["results"]] == [low.item_id]
    assert api.get(url, {"min_confidence": 2}).status_code == 400


def test_worker_scores_and_costs(api: APIClient, finance: Any, as_user: Any, labeled_job: Job) -> None:
    scores = api.get(f"/api/jobs/{labeled_job.pk}/workers/").json()["results"]
    assert sorted(s["agreement"] for s in scores) == [0.0, 1.0, 1.0]
    costs = as_user(finance).get(f"/api/jobs/{labeled_job.pk}/costs/").json()
    # 12 assignments x (0.05 + 0.01) + 4 Hits x 0.03
    assert costs["total"] == "0.8400" and costs["charged"] == "0.8400"
    assert costs["by_kind"] == {"gt_object_charge": "0.1200", "marketplace_fee": "0.1200", "reward": "0.6000"}
    assert as_user(finance).get(f"/api/jobs/{labeled_job.pk}/labels/").status_code == 403


def test_streamed_export_with_extras(api: APIClient, labeled_job: Job) -> None:
    response = api.get(f"/api/jobs/{labeled_job.pk}/export/", {"format": "csv", "cost": "1", "answers": "1"})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Disposition"] == f'attachment; filename="job-{labeled_job.pk}.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 4 and rows[0]["cost_usd"] == "0.2100"
    assert api.get(f"/api/jobs/{labeled_job.pk}/export/", {"format": "coco"}).status_code == 400  # not a drawing job
    assert api.get(f"/api/jobs/{labeled_job.pk}/export/", {"format": "pdf"}).status_code == 400


def test_background_export_shows_progress(
    api: APIClient,
    labeled_job: Job,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/jobs/{labeled_job.pk}/export/", {"format": "manifest"}, format="json")
    assert response.status_code == 202
    export = LabelExport.objects.get()
    status = api.get(f"/api/jobs/{labeled_job.pk}/exports/{export.pk}/").json()
    assert (status["state"], status["rows_done"], status["percent"]) == ("done", 4, 100)


def test_versions_snapshot_download_and_diff(api: APIClient, reviewer: Any, as_user: Any, labeled_job: Job) -> None:
    base = f"/api/jobs/{labeled_job.pk}/versions/"
    first = api.post(base, {"note": "one"}, format="json")
    assert first.status_code == 201 and first.json()["number"] == 1
    ConsensusLabel.objects.filter(job=labeled_job).order_by("item_id").first()
    changed = ConsensusLabel.objects.filter(job=labeled_job).order_by("item_id").first()
    ConsensusLabel.objects.filter(pk=changed.pk).update(value="neutral")
    assert api.post(base, {}, format="json").json()["number"] == 2
    reader = as_user(reviewer)
    download = reader.get(f"{base}1/download/")
    body = b"".join(download.streaming_content)
    assert hashlib.sha256(body).hexdigest() == DatasetVersion.objects.get(number=1).sha256
    assert download["ETag"] == f'"{first.json()["sha256"]}"'
    diff = reader.get(f"{base}2/diff/", {"against": 1}).json()
    assert diff["summary"] == {"added": 0, "removed": 0, "changed": 1, "unchanged": 3}
    assert diff["changed"][0]["new"] == "neutral"
    assert reader.get(f"{base}2/diff/").status_code == 400
    assert reader.post(base, {}, format="json").status_code == 403
    assert len(reader.get(base).json()["results"]) == 2


def test_snapshot_without_consensus_is_400(api: APIClient) -> None:
    job = JobFactory()
    response = api.post(f"/api/jobs/{job.pk}/versions/", {}, format="json")
    assert response.status_code == 400 and "no consensus labels" in response.json()["detail"]


def test_streamed_answers_show_worker_ids_only_to_who_may_see_them(
    labeled_job: Job, as_user: Any, ops_manager: Any, reviewer: Any
) -> None:
    import json as _json

    from workforce.models import Worker
    from workforce.privacy import mask_worker_id

    ids = set(Worker.objects.filter(answers__job=labeled_job).values_list("external_id", flat=True))

    def workers_seen(user: Any) -> set[str]:
        response = as_user(user).get(f"/api/jobs/{labeled_job.pk}/export/", {"format": "jsonl", "answers": "true"})
        assert response.status_code == 200
        rows = [_json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
        return {answer["worker"] for row in rows for answer in row["answers"]}

    assert workers_seen(ops_manager) == ids  # ops managers hold workforce.view_worker_identity
    assert workers_seen(reviewer) == {mask_worker_id(i) for i in ids}
