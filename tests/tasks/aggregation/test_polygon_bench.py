"""``bench_vision --shapes polygons``: simulated polygon annotators, fused by pixel vote."""

from __future__ import annotations

import json
from io import StringIO

from django.core.management import call_command

from tasks.aggregation.polygon_bench import run_polygons, simulate_polygons


def test_the_simulation_is_seeded_and_draws_what_it_says() -> None:
    one, two = (simulate_polygons(images=20, annotators=4, seed=3) for _ in range(2))
    assert one.drawings == two.drawings and one.truth == two.truth
    assert all(len(workers) == 4 for workers in one.annotators.values())
    assert all(len(drawing.points) >= 3 for drawings in one.drawings.values() for drawing in drawings)


def test_fused_polygons_beat_the_average_annotator_and_find_the_objects() -> None:
    result = run_polygons(images=60, annotators=5, seed=1)
    assert result["fused_mean_iou"] > result["average_annotator_mean_iou"]
    assert float(result["polygon_recall"]) > 0.9 and float(result["polygon_precision"]) > 0.9


def test_the_command_runs_the_polygon_benchmark() -> None:
    out = StringIO()
    call_command("bench_vision", "--shapes", "polygons", "--images", "10", "--annotators", "3", "--json", stdout=out)
    result = json.loads(out.getvalue())
    assert result["shapes"] == "polygons" and result["images"] == 10
    assert 0 < result["fused_mean_iou"] <= 1
