"""Ground Truth bounding-box output imported as an ``image_boxes`` job: the real manifest's consolidated
boxes, hand-made worker responses in AWS's ``boundingBox`` format, gold, consensus and COCO export."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tasks.models import (
    Answer,
    Assignment,
    ConsensusLabel,
    CostEntry,
    CostKind,
    GoldGrade,
    GroundTruthLabel,
    Item,
    Job,
    TaskKind,
)
from tasks.services.errors import ServiceError
from tasks.services.groundtruth.costs import Pricing, book_groundtruth_costs
from tasks.services.groundtruth.importing import ITEM_KEY, import_groundtruth_output
from tasks.services.groundtruth.running import configure_labeling_job
from tasks.services.groundtruth.shapes import CONSOLIDATED_WORKER
from tests.tasks.groundtruth.data import BBOX_MANIFEST, IC_MANIFEST, labeled_objects
from workforce.audit import Actor
from workforce.marketplaces.groundtruth.formats import iter_worker_response_files, read_worker_responses
from workforce.models import Worker

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")
JOB_NAME = "labeling-job/ground-truth-od-demo-1662974840"


def _lines() -> list[dict[str, Any]]:
    return [json.loads(line) for line in BBOX_MANIFEST.read_text().splitlines() if line.strip()]


def _import(**kwargs: Any) -> Job:
    result = import_groundtruth_output(
        manifest_text=kwargs.pop("text", BBOX_MANIFEST.read_text()), actor=ACTOR, new_job_name="birds", **kwargs
    )
    return Job.objects.get(pk=result.job)


def test_the_real_manifest_becomes_a_box_job_with_its_100_images_and_192_boxes() -> None:
    job = _import(responses=[], consolidated_as="label")
    assert job.task_kind == TaskKind.IMAGE_BOXES and job.labels == ["Bird"]
    first = _lines()[0]
    item = Item.objects.get(job=job, external_id="0")
    assert item.payload == {
        "source-ref": first["source-ref"],
        "image_url": first["source-ref"],
        "width": 680,
        "height": 1024,
    }
    labels = list(GroundTruthLabel.objects.filter(job=job))
    assert len(labels) == 100
    assert sum(len(label.value["shapes"]) for label in labels) == 192
    value = GroundTruthLabel.objects.get(item=item).value
    # top 164.6, left 138.8, height 859, width 443.8 -> [x1, y1, x2, y2]
    assert value == {"shapes": [{"label": "Bird", "box": [138.8, 164.6, 582.6, 1023.6], "confidence": 0.93}]}
    assert not Answer.objects.filter(job=job).exists()  # "label" keeps them out of the answers


def test_without_worker_responses_the_consolidated_boxes_are_one_annotator_and_consensus_runs() -> None:
    job = _import(responses=[])
    worker = Worker.objects.get(external_id=CONSOLIDATED_WORKER)
    assert Answer.objects.filter(job=job, assignment__worker=worker).count() == 100
    consensus = ConsensusLabel.objects.filter(item__job=job)
    assert consensus.count() == 100
    assert sum(len(c.value["shapes"]) for c in consensus) == 192
    fused = consensus.get(item__external_id="0").value["shapes"][0]
    assert fused["label"] == "Bird" and fused["box"] == [138.8, 164.6, 582.6, 1023.6]
    again = import_groundtruth_output(manifest_text=BBOX_MANIFEST.read_text(), responses=[], actor=ACTOR, job=job)
    assert (again.items_created, again.assignments_created, again.gt_labels_unchanged) == (0, 0, 100)


def test_the_coco_export_of_the_imported_job_holds_every_box(tmp_path: Path) -> None:
    job = _import(responses=[])
    out = tmp_path / "coco.json"
    call_command("export_labels", "--job", str(job.pk), "--format", "coco", "--output", str(out))
    coco = json.loads(out.read_text())
    assert len(coco["images"]) == 100 and len(coco["annotations"]) == 192
    assert coco["categories"][0]["name"] == "Bird"
    assert {image["width"] for image in coco["images"]} >= {680, 1024}


def _response_tree(root: Path) -> Path:
    """Three workers on objects 0 and 1, in the file layout and answer format Ground Truth writes."""
    size = {"width": 680, "height": 1024}
    boxes = {
        0: {
            "public.w1": [{"label": "Bird", "left": 140, "top": 160, "width": 440, "height": 860}],
            "public.w2": [{"label": "Bird", "left": 136, "top": 166, "width": 446, "height": 856}],
            "public.w3": [],
        },
        1: {
            "public.w1": [{"label": "Bird", "left": 455, "top": 187, "width": 257, "height": 245}],
            "public.w2": [{"label": "Bird", "left": 458, "top": 190, "width": 252, "height": 240}],
            "public.w3": [{"label": "Bird", "left": 10, "top": 10, "width": 50, "height": 50}],
        },
    }
    sizes = {0: size, 1: {"width": 512, "height": 384}}  # object 1 (1024 x 768) was shown at half size
    for obj, answers in boxes.items():
        folder = root / "worker-response" / "iteration-1" / str(obj)
        folder.mkdir(parents=True)
        scale = 0.5 if obj == 1 else 1.0
        content = [
            {
                "workerId": worker,
                "submissionTime": "2022-09-12T09:50:00Z",
                "answerContent": {
                    "boundingBox": {
                        "boundingBoxes": [
                            {**b, **{k: b[k] * scale for k in ("left", "top", "width", "height")}} for b in drawn
                        ],
                        "inputImageProperties": sizes[obj],
                    }
                },
            }
            for worker, drawn in answers.items()
        ]
        (folder / "2022-09-12_09:50:00.json").write_text(json.dumps({"answers": content}))
    return root


def test_worker_bounding_boxes_become_shapes_and_are_fused(tmp_path: Path) -> None:
    responses = read_worker_responses(iter_worker_response_files(_response_tree(tmp_path)))
    job = _import(responses=responses)
    answers = {
        (a.item.external_id, a.assignment.worker.external_id): a.value
        for a in Answer.objects.filter(job=job).select_related("item", "assignment__worker")
    }
    assert len(answers) == 6  # with worker responses, "auto" leaves the consolidated boxes as labels only
    assert answers[("0", "public.w1")] == {"shapes": [{"label": "Bird", "box": [140.0, 160.0, 580.0, 1020.0]}]}
    assert answers[("1", "public.w2")] == {"shapes": [{"label": "Bird", "box": [458.0, 190.0, 710.0, 430.0]}]}
    assert answers[("0", "public.w3")] == {"shapes": []}
    fused = ConsensusLabel.objects.get(item__job=job, item__external_id="1").value["shapes"]
    assert len(fused) == 1  # the lone stray box of w3 is not kept
    x1, y1, x2, y2 = fused[0]["box"]
    assert 455 <= x1 <= 458 and 187 <= y1 <= 190 and 709 <= x2 <= 713 and 429 <= y2 <= 433


def test_consolidated_boxes_as_gold_grade_the_workers(tmp_path: Path) -> None:
    responses = read_worker_responses(iter_worker_response_files(_response_tree(tmp_path)))
    job = _import(responses=responses, consolidated_as="gold")
    assert Item.objects.filter(job=job, is_gold=True).count() == 100
    gold = Item.objects.get(job=job, external_id="1").gold_answer
    assert len(gold["shapes"]) == 3 and "confidence" not in gold["shapes"][0]
    grades = {g.worker.external_id: g for g in GoldGrade.objects.filter(job=job, item__external_id="1")}
    assert set(grades) == {"public.w1", "public.w2", "public.w3"}
    assert not Answer.objects.filter(job=job, assignment__worker__external_id=CONSOLIDATED_WORKER).exists()


def test_a_worker_box_outside_the_image_is_refused_with_nothing_written(tmp_path: Path) -> None:
    folder = tmp_path / "worker-response" / "iteration-1" / "0"
    folder.mkdir(parents=True)
    bad = {"label": "Bird", "left": 600, "top": 10, "width": 300, "height": 50}
    answer = {"boundingBox": {"boundingBoxes": [bad], "inputImageProperties": {"width": 680, "height": 1024}}}
    (folder / "t.json").write_text(json.dumps({"answers": [{"workerId": "public.w1", "answerContent": answer}]}))
    responses = read_worker_responses(iter_worker_response_files(tmp_path))
    with pytest.raises(ServiceError, match="outside the 680 x 1024 image"):
        _import(responses=responses)
    assert not Job.objects.exists()


def test_gold_or_annotator_is_refused_for_classification_output() -> None:
    with pytest.raises(ServiceError, match="bounding boxes only"):
        import_groundtruth_output(
            manifest_text=IC_MANIFEST.read_text(), responses=[], actor=ACTOR, new_job_name="x", consolidated_as="gold"
        )


def test_the_command_imports_boxes_as_gold_or_refuses_a_bad_choice(capsys: pytest.CaptureFixture[str]) -> None:
    call_command(
        "import_groundtruth",
        "--new-job",
        "birds",
        "--manifest",
        str(BBOX_MANIFEST),
        "--consolidated-as",
        "gold",
        "--gold-share",
        "0.5",
        "--json",
    )
    output = json.loads(capsys.readouterr().out)
    gold = output["items"]["gold"]
    assert 20 < gold < 80 and Item.objects.filter(is_gold=True).count() == gold
    with pytest.raises(CommandError) as error:
        call_command(
            "import_groundtruth", "--new-job", "x", "--manifest", str(IC_MANIFEST), "--consolidated-as", "annotator"
        )
    assert error.value.returncode == 2


def test_the_consolidated_annotator_is_not_charged_a_workforce_price() -> None:
    job = _import(responses=[])
    labeling_job = configure_labeling_job(
        job=job, actor=ACTOR, task_type="BoundingBox", workforce="public", task_price=Decimal("0.036")
    )
    consolidated = list(Assignment.objects.filter(job=job).values_list("external_id", flat=True))
    assert consolidated  # Ground Truth's own boxes, recorded as an annotator's assignments
    booked = book_groundtruth_costs(
        job=job, pricing=Pricing.of(labeling_job), objects=labeled_objects(job), responses=consolidated
    )
    assert booked == 100  # the object charges only
    assert not CostEntry.objects.filter(job=job, kind=CostKind.WORKFORCE_PRICE).exists()


def test_responses_to_our_own_box_job_are_scaled_to_the_items_size_before_any_label_exists(tmp_path: Path) -> None:
    job = Job.objects.create(name="ours", task_kind=TaskKind.IMAGE_BOXES, labels=["Bird"], marketplace="groundtruth")
    Item.objects.create(
        job=job, external_id="a", payload={"image_url": "s3://b/a.jpg", "width": 800, "height": 600}, payload_hash="x"
    )
    manifest = json.dumps({"source-ref": "s3://b/a.jpg", ITEM_KEY: "a"})
    folder = tmp_path / "worker-response" / "iteration-1" / "0"
    folder.mkdir(parents=True)
    box = {"label": "Bird", "left": 10, "top": 20, "width": 100, "height": 50}
    answer = {"boundingBox": {"boundingBoxes": [box], "inputImageProperties": {"width": 400, "height": 300}}}
    (folder / "t.json").write_text(json.dumps({"answers": [{"workerId": "private.w1", "answerContent": answer}]}))
    import_groundtruth_output(
        manifest_text=manifest,
        responses=read_worker_responses(iter_worker_response_files(tmp_path)),
        actor=ACTOR,
        job=job,
        label_attribute="crowdops",
        require_labels=False,
        labeling_job_name="crowdops-1-ours",
    )
    assert Answer.objects.get(job=job).value == {"shapes": [{"label": "Bird", "box": [20.0, 40.0, 220.0, 140.0]}]}
