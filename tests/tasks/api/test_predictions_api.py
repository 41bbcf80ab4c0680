"""Model predictions over the API: an import (all rows or none), the active-learning view and the retraining
export, as the admin's prediction pages and the ``import_predictions`` command offer them."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rest_framework.test import APIClient

from tasks.models import Job, JobState, Prediction
from tasks.services.collection import submit_assignment
from tasks.services.consensus import compute_consensus
from tasks.services.pool import assign_next_hit
from tasks.services.publishing import publish_job
from tests.factories import ItemFactory, JobFactory
from workforce.audit import Actor
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")


def _job(items: int = 3) -> Job:
    job = JobFactory(state=JobState.DRAFT, labels=["pos", "neg"], redundancy=1)
    for n in range(items):
        ItemFactory(job=job, external_id=f"i{n}")
    return publish_job(job=job, actor=SYSTEM)


def _upload(api: APIClient, job: Job, text: str, model: str = "m1", name: str = "p.csv") -> Any:
    upload = io.BytesIO(text.encode())
    upload.name = name
    return api.post(
        f"/api/jobs/{job.pk}/predictions/import/", {"file": upload, "model_name": model}, format="multipart"
    )


def test_an_ops_manager_imports_predictions_and_again_updates_them(api: APIClient) -> None:
    job = _job()
    first = _upload(api, job, "external_id,label,score\ni0,pos,0.9\ni1,neg,0.4\n")
    assert first.status_code == 201, first.content
    assert first.json() == {"model_name": "m1", "rows": 2, "created": 2, "updated": 0, "hits_reprioritised": 2}
    again = _upload(api, job, "external_id,label,score\ni0,neg,0.6\n")
    assert again.status_code == 200 and again.json()["updated"] == 1
    assert dict(Prediction.objects.filter(job=job).values_list("item__external_id", "value")) == {
        "i0": "neg",
        "i1": "neg",
    }
    assert AuditEvent.objects.filter(action__startswith="predictions.").exists()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("external_id,label,score\ni0,pos,0.9\ni9,pos,0.5\n", "i9"),  # an item the job does not have
        ("external_id,label,score\ni0,maybe,0.9\n", "maybe"),  # a label the job does not have
        ("external_id,label,score\ni0,pos,1.7\n", "score"),
    ],
)
def test_a_bad_row_is_a_400_naming_its_line_and_imports_nothing(api: APIClient, text: str, needle: str) -> None:
    job = _job()
    response = _upload(api, job, text)
    assert response.status_code == 400
    body = response.json()
    assert body["bad_rows"] == 1 and needle in body["errors"][0]["message"]
    assert body["errors"][0]["line"] in (2, 3)
    assert not Prediction.objects.exists()


def test_an_import_without_a_model_name_or_file_is_a_400(api: APIClient) -> None:
    job = _job()
    refused = api.post(f"/api/jobs/{job.pk}/predictions/import/", {"model_name": "m1"}, format="multipart")
    assert refused.status_code == 400 and "file" in refused.json()
    upload = io.BytesIO(b"external_id,label,score\ni0,pos,0.9\n")
    upload.name = "p.csv"
    nameless = api.post(f"/api/jobs/{job.pk}/predictions/import/", {"file": upload}, format="multipart")
    assert nameless.status_code == 400 and "model_name" in nameless.json()


def test_active_learning_orders_items_and_the_export_lists_what_to_retrain(api: APIClient, make_worker: Any) -> None:
    job = _job(items=2)
    worker = make_worker()
    for _ in range(2):
        lease = assign_next_hit(job=job, worker=worker)
        submit_assignment(assignment=lease, worker=worker, answers={lease.hit.items.get().pk: "pos"})
    compute_consensus(job=job, actor=SYSTEM, method="mv")
    assert _upload(api, job, "external_id,label,score\ni0,neg,0.9\ni1,pos,0.3\n").status_code == 201
    unsure = api.get(f"/api/jobs/{job.pk}/predictions/active-learning/")
    assert unsure.status_code == 200, unsure.content
    body = unsure.json()
    assert (body["model"], body["models"], body["order"]) == ("m1", ["m1"], "uncertainty")
    assert [i["external_id"] for i in body["items"]] == ["i1", "i0"]  # the least certain first
    assert [i["disagrees"] for i in body["items"]] == [False, True]
    assert sum(d["answers"] for d in body["by_day"]) == 2 and sum(d["disagreeing"] for d in body["by_day"]) == 1
    against = api.get(f"/api/jobs/{job.pk}/predictions/active-learning/?order=disagreement&model=m1")
    assert [i["external_id"] for i in against.json()["items"]] == ["i0"]
    export = api.get(f"/api/jobs/{job.pk}/predictions/retraining.csv?model=m1")
    assert export.status_code == 200 and export["Content-Type"].startswith("text/csv")
    lines = b"".join(export.streaming_content).decode().splitlines()
    assert lines[0] == "external_id,label,confidence,predicted,score"
    # i0: the crowd contradicts the model; i1: the model was unsure (0.3) and the crowd has a label
    assert [line.split(",")[0] for line in lines[1:]] == ["i0", "i1"]


@pytest.mark.parametrize(
    ("query", "needle"),
    [
        ("?order=random", "order must be one of"),
        ("?limit=0", "limit must be"),
        ("?limit=abc", "limit must be"),
        ("?limit=100000", "limit must be"),
        ("?model=nope", "no predictions of the model 'nope'"),
    ],
)
def test_bad_active_learning_queries_are_a_400_with_a_sentence(api: APIClient, query: str, needle: str) -> None:
    job = _job()
    assert _upload(api, job, "external_id,label,score\ni0,pos,0.9\n").status_code == 201
    response = api.get(f"/api/jobs/{job.pk}/predictions/active-learning/{query}")
    assert response.status_code == 400 and needle in response.json()["detail"]


def test_a_job_without_predictions_says_so(api: APIClient) -> None:
    job = _job()
    for url in ("active-learning/", "retraining.csv"):
        response = api.get(f"/api/jobs/{job.pk}/predictions/{url}")
        assert response.status_code == 400 and "no model predictions" in response.json()["detail"]
    assert api.get("/api/jobs/999999/predictions/active-learning/").status_code == 404
