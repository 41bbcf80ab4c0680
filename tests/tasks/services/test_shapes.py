"""Drawing jobs: the server checks every shape, grades drawings on gold, and fuses them geometrically."""

from __future__ import annotations

import math

import pytest

from tasks.models import Answer, ConsensusLabel, GoldGrade, Job, JobState, TaskKind
from tasks.services.collection import submit_assignment
from tasks.services.consensus import compute_consensus
from tasks.services.errors import SubmissionRefused
from tasks.services.imports import import_items_from_text
from tasks.services.pool import assign_next_hit
from tasks.services.publishing import publish_job
from tasks.services.shapes import grade_shape_answer, validate_shapes
from tests.factories import ItemFactory, JobFactory
from workforce.audit import Actor

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")
SIZE = (200.0, 100.0)


def _job(kind: str = TaskKind.IMAGE_BOXES, items: int = 1, **fields: object) -> Job:
    job = JobFactory(state=JobState.DRAFT, task_kind=kind, labels=["car", "person"], **fields)
    for n in range(items):
        ItemFactory(job=job, external_id=f"img{n}", payload={"image_url": "/static/x.png", "width": 200, "height": 100})
    return publish_job(job=job, actor=SYSTEM)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"shapes": [{"label": "car", "box": [10, 10, 250, 50]}]}, "outside the 200 x 100 image"),
        ({"shapes": [{"label": "car", "box": [10, 10, float("nan"), 50]}]}, "not a finite number"),
        ({"shapes": [{"label": "car", "box": [10, 10, 10, 50]}]}, "smaller than one pixel"),
        ({"shapes": [{"label": "bus", "box": [10, 10, 20, 50]}]}, "needs a class"),
        ({"shapes": [{"label": "car", "box": [10, "a", 20, 50]}]}, "not a number"),
        ({"shapes": [{"label": "car", "box": [1, 2, 3]}]}, "must be a box"),
        ({"shapes": [{"label": "car"}] * 201}, "at most 200"),
        ("not json", "not JSON"),
        ({"boxes": []}, "must be"),
    ],
)
def test_bad_boxes_are_refused_with_a_sentence(value: object, message: str) -> None:
    with pytest.raises(SubmissionRefused, match=message):
        validate_shapes(TaskKind.IMAGE_BOXES, ["car", "person"], value, SIZE)


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([[1, 1], [50, 1]], "at least 3 vertices"),
        ([[1, 1], [50, 1], [100, 1]], "no area"),
        ([[1, 1], [50, 1], [50, 300]], "outside"),
        ([[1, 1], [50, 1], [math.inf, 30]], "finite"),
        ([[1, 1]] * 501, "more than 500"),
    ],
)
def test_bad_polygons_are_refused(points: list[list[float]], message: str) -> None:
    with pytest.raises(SubmissionRefused, match=message):
        validate_shapes(TaskKind.IMAGE_POLYGONS, ["car"], {"shapes": [{"label": "car", "points": points}]}, SIZE)


def test_good_shapes_are_normalised_and_clamped_to_the_image() -> None:
    value = validate_shapes(
        TaskKind.IMAGE_BOXES, ["car"], '{"shapes": [{"label": "car", "box": [-0.3, 10.123, 200.2, 50]}]}', SIZE
    )
    assert value == {"shapes": [{"label": "car", "box": [0.0, 10.12, 200.0, 50.0]}]}


def test_a_submitted_drawing_is_checked_against_its_items_image_and_stored(make_worker) -> None:
    job = _job()
    worker = make_worker()
    assignment = assign_next_hit(job=job, worker=worker)
    item_id = assignment.hit.items.get().pk
    with pytest.raises(SubmissionRefused, match="outside"):
        submit_assignment(
            assignment=assignment,
            worker=worker,
            answers={item_id: {"shapes": [{"label": "car", "box": [0, 0, 300, 50]}]}},
        )
    drawing = {
        "shapes": [{"label": "car", "box": [10, 10, 60, 50]}, {"label": "person", "points": [[1, 1], [9, 1], [5, 9]]}]
    }
    with pytest.raises(SubmissionRefused, match="must be a box"):
        submit_assignment(assignment=assignment, worker=worker, answers={item_id: drawing})
    assert not Answer.objects.exists()
    submit_assignment(assignment=assignment, worker=worker, answers={item_id: {"shapes": drawing["shapes"][:1]}})
    assert Answer.objects.get().value == {"shapes": [{"label": "car", "box": [10.0, 10.0, 60.0, 50.0]}]}


def test_drawings_fuse_into_one_consensus_box_per_object(make_worker) -> None:
    job = _job(redundancy=3)
    boxes = ([10, 10, 60, 50], [11, 9, 61, 51], [12, 11, 59, 50])
    for box in boxes:
        worker = make_worker()
        assignment = assign_next_hit(job=job, worker=worker)
        item_id = assignment.hit.items.get().pk
        submit_assignment(
            assignment=assignment, worker=worker, answers={item_id: {"shapes": [{"label": "car", "box": box}]}}
        )
    result = compute_consensus(job=job, actor=SYSTEM)
    label = ConsensusLabel.objects.get(job=job)
    [fused] = label.value["shapes"]
    assert result.method == "geometry" and label.method == "geometry" and label.answers_count == 3
    assert fused["label"] == "car"
    assert all(abs(a - b) <= 1.5 for a, b in zip(fused["box"], [11, 10, 60, 50], strict=True))
    assert 0.8 < label.confidence <= 1.0


def test_gold_drawings_are_graded_by_matched_f1() -> None:
    gold = {"shapes": [{"label": "car", "box": [0, 0, 10, 10]}, {"label": "person", "box": [20, 20, 30, 30]}]}
    perfect = {"shapes": [{"label": "person", "box": [20, 20, 30, 31]}, {"label": "car", "box": [0, 0, 10, 10]}]}
    wrong_class = {"shapes": [{"label": "person", "box": [0, 0, 10, 10]}]}
    half = {"shapes": [{"label": "car", "box": [0, 0, 10, 10]}]}
    assert grade_shape_answer(TaskKind.IMAGE_BOXES, perfect, gold) == 1.0
    assert grade_shape_answer(TaskKind.IMAGE_BOXES, wrong_class, gold) == 0.0
    assert grade_shape_answer(TaskKind.IMAGE_BOXES, half, gold) == pytest.approx(2 / 3)
    square = {"shapes": [{"label": "car", "points": [[0, 0], [10, 0], [10, 10], [0, 10]]}]}
    shifted = {"shapes": [{"label": "car", "points": [[1, 0], [11, 0], [11, 10], [1, 10]]}]}
    assert grade_shape_answer(TaskKind.IMAGE_POLYGONS, shifted, square) == 1.0
    assert grade_shape_answer(TaskKind.IMAGE_POLYGONS, {"shapes": []}, square) == 0.0


def test_drawing_jobs_import_need_the_image_size_and_take_gold_drawings(make_worker) -> None:
    job = JobFactory(state=JobState.DRAFT, task_kind=TaskKind.IMAGE_BOXES, labels=["car"])
    bad = "external_id,image_url\nimg1,/static/x.png\n"
    with pytest.raises(Exception, match="width"):
        import_items_from_text(job=job, text=bad, filename="items.csv", actor=SYSTEM)
    good = (
        "external_id,image_url,width,height,gold\n"
        'img1,/static/x.png,200,100,"{""shapes"": [{""label"": ""car"", ""box"": [10, 10, 60, 50]}]}"\n'
        "img2,/static/y.png,200,100,\n"
    )
    import_items_from_text(job=job, text=good, filename="items.csv", actor=SYSTEM)
    gold = job.items.get(external_id="img1")
    assert gold.is_gold and gold.gold_answer == {"shapes": [{"label": "car", "box": [10.0, 10.0, 60.0, 50.0]}]}
    assert not GoldGrade.objects.exists()


def test_fused_boxes_export_as_coco(make_worker, tmp_path) -> None:
    import json as _json

    from django.core.management import call_command

    job = _job(redundancy=2)
    for box in ([10, 10, 60, 50], [12, 10, 60, 52]):
        worker = make_worker()
        assignment = assign_next_hit(job=job, worker=worker)
        item_id = assignment.hit.items.get().pk
        submit_assignment(
            assignment=assignment, worker=worker, answers={item_id: {"shapes": [{"label": "person", "box": box}]}}
        )
    compute_consensus(job=job, actor=SYSTEM)
    out = tmp_path / "coco.json"
    call_command("export_labels", "--job", str(job.pk), "--format", "coco", "--output", str(out))
    coco = _json.loads(out.read_text())
    assert coco["categories"] == [{"id": 1, "name": "car"}, {"id": 2, "name": "person"}]
    [image] = coco["images"]
    assert (image["width"], image["height"]) == (200, 100)
    [annotation] = coco["annotations"]
    assert annotation["image_id"] == image["id"] and annotation["category_id"] == 2
    x, y, w, h = annotation["bbox"]
    assert (
        abs(x - 11) <= 1.5
        and abs(y - 10) <= 1.5
        and abs(w - 49) <= 2.5
        and annotation["area"] == pytest.approx(w * h, rel=0.01)
    )
