"""Box and polygon consensus on hand-made cases and on the seeded annotator simulation."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.aggregation.boxes import BoxAggregator, Drawing, grade_shapes, iou_matrix, weighted_median
from tasks.aggregation.polygons import PolygonAggregator, PolygonDrawing, rasterise, trace
from tasks.aggregation.vision_bench import run


def test_iou_of_known_boxes() -> None:
    a = np.array([[0, 0, 10, 10]], dtype=float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], dtype=float)
    assert iou_matrix(a, b)[0].tolist() == pytest.approx([1.0, 50 / 150, 0.0])


def test_weighted_median_follows_the_heavier_side() -> None:
    values = np.array([[0.0], [10.0], [11.0]])
    assert weighted_median(values, np.array([1.0, 1.0, 1.0]))[0] == 10.0
    assert weighted_median(values, np.array([5.0, 1.0, 1.0]))[0] == 0.0


def test_three_annotators_one_careless_fuse_to_the_careful_box() -> None:
    drawings = {
        "img": [
            Drawing("a", (10, 10, 50, 50), "car"),
            Drawing("b", (11, 9, 51, 49), "car"),
            Drawing("c", (15, 14, 55, 54), "person"),  # sloppy, wrong class, still the same object
            Drawing("c", (200, 200, 220, 220), "car"),  # a box nobody else drew
        ]
    }
    model = BoxAggregator().fit(drawings)
    [fused] = model.labels_["img"]
    assert fused.label == "car" and fused.workers == ("a", "b", "c")
    careful = np.array([[10.5, 9.5, 50.5, 49.5]])
    plain_mean = np.array([[12.0, 11.0, 52.0, 51.0]])
    # the careless drawing moves the fused box less than it moves a plain average
    assert iou_matrix(np.array([fused.box]), careful)[0, 0] > iou_matrix(plain_mean, careful)[0, 0]
    first_pass = BoxAggregator(n_passes=1).fit(drawings).labels_["img"][0]
    assert first_pass.box == pytest.approx((11, 10, 51, 50))  # the weighted median of each edge
    assert 0 < fused.confidence < 1
    assert model.image_confidence_["img"] < fused.confidence  # the dropped lone box lowers the image
    assert model.skills_["c"] < min(model.skills_["a"], model.skills_["b"])


def test_an_object_drawn_by_a_minority_is_dropped_and_empty_images_are_certain() -> None:
    drawings = {"img": [Drawing("a", (0, 0, 10, 10), "car")], "empty": []}
    model = BoxAggregator().fit(drawings, annotators={"img": ["a", "b", "c"], "empty": ["a", "b"]})
    assert model.labels_["img"] == [] and model.labels_["empty"] == []
    assert model.image_confidence_["empty"] == 1.0
    assert model.image_confidence_["img"] < 1.0


def test_grading_shapes_against_gold() -> None:
    truth = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], dtype=float)
    drawn = np.array([[0, 0, 10, 11], [50, 50, 60, 60], [70, 70, 80, 80]], dtype=float)
    grade = grade_shapes(truth, drawn)
    assert grade.matched == 1
    assert (grade.precision, grade.recall) == pytest.approx((1 / 3, 1 / 2))
    assert grade.f1 == pytest.approx(0.4)
    assert grade_shapes(np.zeros((0, 4)), np.zeros((0, 4))).f1 == 1.0


def test_rasterise_and_trace_a_rectangle() -> None:
    mask = rasterise([(10, 10), (110, 10), (110, 60), (10, 60)], origin=(0, 0), cell=1.0, shape=(80, 130))
    assert mask.sum() == 100 * 50
    boundary = trace(mask)
    assert len(boundary) == 2 * (100 + 50) - 4
    assert {(r, c) for r, c in boundary} == {(r, c) for r, c in np.argwhere(mask) if r in (10, 59) or c in (10, 109)}


def test_polygons_fuse_by_pixel_vote_and_keep_the_majority_class() -> None:
    square = ((10.0, 10.0), (110.0, 10.0), (110.0, 60.0), (10.0, 60.0))
    drawings = {
        "img": [
            PolygonDrawing("a", square, "road"),
            PolygonDrawing("b", ((12, 8), (108, 11), (111, 62), (9, 59)), "road"),
            PolygonDrawing("c", ((11, 10), (110, 12), (109, 58), (10, 61)), "grass"),
        ]
    }
    [fused] = PolygonAggregator().fit(drawings).labels_["img"]
    assert fused.label == "road"
    points = np.array(fused.points)
    assert 4 <= len(points) <= 8
    assert points[:, 0].min() == pytest.approx(10, abs=2.5) and points[:, 0].max() == pytest.approx(110, abs=2.5)
    assert points[:, 1].min() == pytest.approx(10, abs=2.5) and points[:, 1].max() == pytest.approx(60, abs=2.5)
    assert fused.confidence > 0.9


def test_fused_boxes_beat_the_best_annotator_and_plain_averaging() -> None:
    result = run(images=300, annotators=5, seed=7)
    assert result["fused_mean_iou"] > result["best_single_annotator_mean_iou"]
    assert result["fused_mean_iou"] > result["cluster_average_mean_iou"]
    assert result["box_recall"] > 0.95 and result["box_precision"] > 0.95


def test_bench_vision_command_prints_the_measures_as_json() -> None:
    import json
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("bench_vision", "--images", "50", "--annotators", "3", "--seed", "2", "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert set(result) >= {
        "fused_mean_iou",
        "best_single_annotator_mean_iou",
        "cluster_average_mean_iou",
        "box_recall",
        "box_precision",
        "seconds",
    }
    assert 0 < result["fused_mean_iou"] <= 1 and result["images"] == 50


def test_bench_vision_refuses_too_few_annotators() -> None:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="at least") as raised:
        call_command("bench_vision", "--annotators", "1")
    assert raised.value.returncode == 2
