"""A model's boxes as pre-labels on a drawing job: imported like any prediction (JSON Lines), drawn in the editor
for the worker to confirm or correct, counted for rubber-stamping, and one more annotator in the geometric
consensus (with no worker score of its own), as it is on multi-label jobs. The MTurk page shows classification
pre-labels too."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tasks.models import ConsensusLabel, Hit, Job, JobState, TaskKind, WorkerJobScore
from tasks.selectors_predictions import list_prelabel_acceptance
from tasks.services.collection import submit_assignment
from tasks.services.consensus import compute_consensus
from tasks.services.errors import ImportValidationError
from tasks.services.pool import assign_next_hit
from tasks.services.predictions import import_predictions_from_text
from tasks.services.publishing import publish_job
from tests.factories import ItemFactory, JobFactory
from tests.tasks.services.mturk_helpers import published_mturk_job
from workforce.audit import Actor
from workforce.marketplaces.mturk import MTurkMarketplace

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")
IMAGE = {"image_url": "https://example.com/a.jpg", "width": 400, "height": 300}
CAR = {"shapes": [{"label": "car", "box": [40, 30, 200, 160]}]}


def _box_job(items: int = 1, **fields: Any) -> Job:
    job = JobFactory(state=JobState.DRAFT, task_kind=TaskKind.IMAGE_BOXES, labels=["car", "person"], **fields)
    for n in range(items):
        ItemFactory(job=job, external_id=f"i{n}", payload=IMAGE)
    return publish_job(job=job, actor=SYSTEM)


def _predict(job: Job, lines: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(line) + "\n" for line in lines)
    import_predictions_from_text(job=job, text=text, filename="boxes.jsonl", model_name="det", actor=SYSTEM)


def _drawing_on_page(page: str) -> dict[str, Any]:
    found = re.search(r"name=\"answer-1\" value='([^']*)'", page)
    assert found, page
    drawing: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return drawing


def test_a_box_outside_the_image_is_refused_with_its_line() -> None:
    job = _box_job()
    with pytest.raises(ImportValidationError) as refused:
        _predict(
            job, [{"external_id": "i0", "value": {"shapes": [{"label": "car", "box": [0, 0, 900, 50]}]}, "score": 0.8}]
        )
    assert refused.value.errors[0].line == 1


def test_the_models_boxes_are_drawn_for_the_worker_to_correct_and_a_stamp_is_counted(make_worker: Any) -> None:
    job = _box_job()
    _predict(job, [{"external_id": "i0", "value": CAR, "score": 0.8}])
    worker = make_worker()
    client = Client()
    client.force_login(worker.user)
    lease = assign_next_hit(job=job, worker=worker)
    page = client.get(f"/work/tasks/{lease.uuid}/").content.decode()
    assert _drawing_on_page(page) == {"shapes": []} and "drawn already" not in page  # the job shows no pre-labels
    job.prelabel_model = "det"
    job.save(update_fields=["prelabel_model"])
    page = client.get(f"/work/tasks/{lease.uuid}/").content.decode()
    assert _drawing_on_page(page) == CAR and "drawn already" in page
    sent = client.post(
        f"/work/tasks/{lease.uuid}/submit/", {"answer-1": json.dumps(CAR)}, HTTP_ACCEPT="application/json"
    )
    assert sent.status_code == 200, sent.content
    [row] = list_prelabel_acceptance(job)
    assert (row.shown, row.accepted) == (1, 1)


def test_the_model_is_one_more_annotator_in_the_box_consensus_without_a_score(make_worker: Any) -> None:
    job = _box_job(redundancy=2)
    workers = [make_worker(), make_worker()]
    drawn = [[42, 31, 198, 162], [300, 200, 390, 290]]  # one worker agrees with the model, one does not
    for worker, box in zip(workers, drawn, strict=True):
        lease = assign_next_hit(job=job, worker=worker)
        submit_assignment(
            assignment=lease,
            worker=worker,
            answers={lease.hit.items.get().pk: {"shapes": [{"label": "car", "box": box}]}},
        )
    _predict(job, [{"external_id": "i0", "value": CAR, "score": 0.9}])
    compute_consensus(job=job, actor=SYSTEM)
    [label] = ConsensusLabel.objects.filter(job=job)
    cars = [shape["box"] for shape in label.value["shapes"] if shape["label"] == "car"]
    # the car is fused from the agreeing worker's box and the model's: between the two, not the worker's alone
    assert len(cars) == 1 and cars[0] != drawn[0], cars
    assert all(min(a, b) <= v <= max(a, b) for v, a, b in zip(cars[0], drawn[0], CAR["shapes"][0]["box"], strict=True))
    assert label.answers_count == 2  # people's answers; the model is not counted as one
    assert set(WorkerJobScore.objects.filter(job=job).values_list("worker_id", flat=True)) == {w.pk for w in workers}


def test_the_mturk_page_ticks_the_suggested_label(mturk: MTurkMarketplace) -> None:
    job = published_mturk_job(mturk, 1, labels=["pos", "neg"])
    import_predictions_from_text(
        job=job, text="external_id,label,score\nt0,neg,0.9\n", filename="p.csv", model_name="m1", actor=SYSTEM
    )
    hit = Hit.objects.get(job=job)
    params = {
        "assignmentId": "ASSIGN1",
        "hitId": str(hit.external_id),
        "workerId": "AWORKER1",
        "turkSubmitTo": "https://www.mturk.com",
    }
    page = Client().get(reverse("mturk-task"), params).content.decode()
    assert "suggested" not in page
    Job.objects.filter(pk=job.pk).update(prelabel_model="m1")
    page = Client().get(reverse("mturk-task"), params).content.decode()
    assert re.search(r'value="neg" required checked> neg <span class="prelabel">suggested</span>', page), page


def test_the_model_is_one_more_annotator_on_a_multi_label_job_too(make_worker: Any) -> None:
    job = JobFactory(
        state=JobState.DRAFT, task_kind=TaskKind.TEXT_MULTILABEL, labels=["red", "round", "big"], redundancy=2
    )
    ItemFactory(job=job, external_id="i0")
    job = publish_job(job=job, actor=SYSTEM)
    workers = [make_worker(), make_worker()]
    for worker, ticked in zip(workers, (["red", "round"], ["red"]), strict=True):
        lease = assign_next_hit(job=job, worker=worker)
        submit_assignment(assignment=lease, worker=worker, answers={lease.hit.items.get().pk: ticked})
    compute_consensus(job=job, actor=SYSTEM, method="mv")
    before = ConsensusLabel.objects.get(job=job).probabilities["round"]
    import_predictions_from_text(
        job=job, text="external_id,label,score\ni0,red|round,0.9\n", filename="p.csv", model_name="m", actor=SYSTEM
    )
    compute_consensus(job=job, actor=SYSTEM, method="mv")
    label = ConsensusLabel.objects.get(job=job)
    assert label.probabilities["round"] > before  # the model's tick is one more vote for "round"
    assert label.answers_count == 2
    assert set(WorkerJobScore.objects.filter(job=job).values_list("worker_id", flat=True)) == {w.pk for w in workers}
