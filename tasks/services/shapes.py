"""Boxes and polygons: checking what a worker drew, grading it against gold, and fusing redundant drawings.

An answer of a shape kind is ``{"shapes": [...]}`` where a box is ``{"label": L, "box": [x1, y1, x2, y2]}``
and a polygon ``{"label": L, "points": [[x, y], ...]}``, in the image's pixel coordinates (the item's
``width`` and ``height``). ``validate_shapes`` refuses, with a sentence naming the shape, anything the
consensus engine could not use: NaN or infinite numbers, shapes outside the image, empty boxes, polygons
with fewer than 3 vertices or no area, classes outside the label set, and more than the size limits.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tasks.aggregation.boxes import BoxAggregator, Drawing, grade_shapes
from tasks.aggregation.polygons import PolygonAggregator, PolygonDrawing, mask_iou, rasterise
from tasks.models import TaskKind
from tasks.services.errors import SubmissionRefused

MAX_SHAPES = 200
MAX_VERTICES = 500
# The JSON of the largest drawing allowed (MAX_SHAPES polygons of MAX_VERTICES vertices) is well under this.
MAX_DRAWING_LENGTH = 4_000_000
EDGE_TOLERANCE = 0.5  # pixels a shape may poke out of the image (a drag to the very edge)
GOLD_IOU = 0.5


def image_size(payload: Mapping[str, Any]) -> tuple[float, float] | None:
    """The item's ``(width, height)`` in pixels, or None when the payload does not give both."""
    try:
        width, height = float(payload["width"]), float(payload["height"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (math.isfinite(width) and math.isfinite(height)) or width <= 0 or height <= 0:
        return None
    return width, height


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SubmissionRefused(f"{where} has a coordinate that is not a number.")
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float (JSON allows any number of digits)
        raise SubmissionRefused(f"{where} has a coordinate that is not a finite number.") from None
    if not math.isfinite(number):
        raise SubmissionRefused(f"{where} has a coordinate that is not a finite number.")
    return number


def _inside(x: float, y: float, size: tuple[float, float], where: str) -> None:
    width, height = size
    if not (-EDGE_TOLERANCE <= x <= width + EDGE_TOLERANCE and -EDGE_TOLERANCE <= y <= height + EDGE_TOLERANCE):
        raise SubmissionRefused(f"{where} lies outside the {width:g} x {height:g} image.")


def _polygon_area(points: Sequence[tuple[float, float]]) -> float:
    xs = np.array([p[0] for p in points])
    ys = np.array([p[1] for p in points])
    return float(abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) / 2.0)


def validate_shapes(kind: str, labels: Sequence[str], value: Any, size: tuple[float, float]) -> dict[str, Any]:
    """Return the answer normalised (floats rounded to 0.01 px, edges clamped to the image) or refuse it."""
    if isinstance(value, str):
        if len(value) > MAX_DRAWING_LENGTH:
            raise SubmissionRefused(f"The drawing is too large (more than {MAX_DRAWING_LENGTH:,} characters).")
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply to be a drawing
            raise SubmissionRefused("The drawing could not be read (it is not JSON).") from None
    shapes = value.get("shapes") if isinstance(value, dict) else None
    if not isinstance(shapes, list):
        raise SubmissionRefused('A drawing must be {"shapes": [...]}.')
    if len(shapes) > MAX_SHAPES:
        raise SubmissionRefused(f"Draw at most {MAX_SHAPES} shapes per image.")
    allowed = {str(label) for label in labels}
    width, height = size
    out: list[dict[str, Any]] = []
    for n, shape in enumerate(shapes, start=1):
        where = f"Shape {n}"
        if not isinstance(shape, dict):
            raise SubmissionRefused(f"{where} is not an object.")
        label = shape.get("label")
        if not isinstance(label, str) or label not in allowed:
            raise SubmissionRefused(f"{where} needs a class from the job's labels ({', '.join(sorted(allowed))}).")
        if kind == TaskKind.IMAGE_BOXES:
            box = shape.get("box")
            if not isinstance(box, list) or len(box) != 4:
                raise SubmissionRefused(f"{where} must be a box [x1, y1, x2, y2].")
            x1, y1, x2, y2 = (_number(v, where) for v in box)
            _inside(x1, y1, size, where)
            _inside(x2, y2, size, where)
            if x2 - x1 < 1 or y2 - y1 < 1:
                raise SubmissionRefused(f"{where} is smaller than one pixel (x2 must exceed x1 and y2 exceed y1).")
            clamped = [min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(x2, width), min(y2, height)]
            out.append({"label": label, "box": [round(v, 2) for v in clamped]})
        else:
            points = shape.get("points")
            if not isinstance(points, list) or len(points) < 3:
                raise SubmissionRefused(f"{where} needs at least 3 vertices.")
            if len(points) > MAX_VERTICES:
                raise SubmissionRefused(f"{where} has more than {MAX_VERTICES} vertices.")
            clean: list[tuple[float, float]] = []
            for point in points:
                if not isinstance(point, list) or len(point) != 2:
                    raise SubmissionRefused(f"{where} has a vertex that is not [x, y].")
                x, y = _number(point[0], where), _number(point[1], where)
                _inside(x, y, size, where)
                clean.append((min(max(x, 0.0), width), min(max(y, 0.0), height)))
            if _polygon_area(clean) < 1.0:
                raise SubmissionRefused(f"{where} encloses no area.")
            out.append({"label": label, "points": [[round(x, 2), round(y, 2)] for x, y in clean]})
    return {"shapes": out}


def _boxes(value: Any) -> np.ndarray:
    shapes = value.get("shapes", []) if isinstance(value, dict) else []
    return np.array([s["box"] for s in shapes if "box" in s], dtype=float).reshape(-1, 4)


def _polygons(value: Any) -> list[list[tuple[float, float]]]:
    shapes = value.get("shapes", []) if isinstance(value, dict) else []
    return [[(float(x), float(y)) for x, y in s["points"]] for s in shapes if "points" in s]


def grade_shape_answer(kind: str, answer: Any, expected: Any) -> float:
    """Gold grade of a drawing: the F1 of its shapes matched one-to-one to the gold shapes at IoU >= 0.5
    (classes must agree for a match to count). An empty drawing of an empty image scores 1."""
    if kind == TaskKind.IMAGE_BOXES:
        truth, drawn = _boxes(expected), _boxes(answer)
        grade = grade_shapes(truth, drawn, iou=_class_gated(_box_iou(truth, drawn), expected, answer))
        return grade.f1
    truth_p, drawn_p = _polygons(expected), _polygons(answer)
    every = [p for poly in truth_p + drawn_p for p in poly]
    if not every:
        return 1.0
    low = np.min(np.array(every), axis=0)
    high = np.max(np.array(every), axis=0)
    cell = max(float((high - low).max()) / 256.0, 1e-9)
    shape = (int((high[1] - low[1]) / cell) + 2, int((high[0] - low[0]) / cell) + 2)
    origin = (float(low[0]), float(low[1]))
    masks_t = [rasterise(p, origin=origin, cell=cell, shape=shape) for p in truth_p]
    masks_d = [rasterise(p, origin=origin, cell=cell, shape=shape) for p in drawn_p]
    iou = _class_gated(mask_iou(masks_t, masks_d), expected, answer)
    return grade_shapes(np.zeros((len(truth_p), 4)), np.zeros((len(drawn_p), 4)), iou=iou, threshold=GOLD_IOU).f1


def _box_iou(truth: np.ndarray, drawn: np.ndarray) -> np.ndarray:
    from tasks.aggregation.boxes import iou_matrix

    return iou_matrix(truth, drawn)


def _class_gated(iou: np.ndarray, expected: Any, answer: Any) -> np.ndarray:
    truth_labels = [s.get("label") for s in expected.get("shapes", [])] if isinstance(expected, dict) else []
    drawn_labels = [s.get("label") for s in answer.get("shapes", [])] if isinstance(answer, dict) else []
    if iou.size == 0:
        return iou
    same = np.array([[t == d for d in drawn_labels] for t in truth_labels], dtype=bool).reshape(iou.shape)
    return np.where(same, iou, 0.0)


def fuse_shapes(
    kind: str, answers: Sequence[tuple[int, int, Any]]
) -> tuple[list[int], list[dict[str, Any]], list[float], dict[int, float]]:
    """Consensus of ``(item id, worker id, drawing)`` answers: per item the fused shapes and the image's
    confidence; per worker a skill (mean IoU with the fused shapes, for boxes)."""
    annotators: dict[str, list[str]] = {}
    if kind == TaskKind.IMAGE_BOXES:
        boxes: dict[str, list[Drawing]] = {}
        for item_id, worker_id, value in answers:
            key, worker = str(item_id), str(worker_id)
            annotators.setdefault(key, []).append(worker)
            boxes.setdefault(key, []).extend(
                Drawing(worker, tuple(s["box"]), s["label"]) for s in value.get("shapes", []) if "box" in s
            )
        model = BoxAggregator().fit(boxes, annotators)
        items = sorted(boxes, key=int)
        values = [
            {
                "shapes": [
                    {"label": b.label, "box": [round(v, 2) for v in b.box], "confidence": round(b.confidence, 4)}
                    for b in model.labels_[k]
                ]
            }
            for k in items
        ]
        confidence = [model.image_confidence_[k] for k in items]
        skills = {int(w): s for w, s in model.skills_.items()}
        return [int(k) for k in items], values, confidence, skills
    polygons: dict[str, list[PolygonDrawing]] = {}
    for item_id, worker_id, value in answers:
        key, worker = str(item_id), str(worker_id)
        annotators.setdefault(key, []).append(worker)
        polygons.setdefault(key, []).extend(
            PolygonDrawing(worker, tuple((float(x), float(y)) for x, y in s["points"]), s["label"])
            for s in value.get("shapes", [])
            if "points" in s
        )
    fitted = PolygonAggregator().fit(polygons, annotators)
    items = sorted(polygons, key=int)
    values = [
        {
            "shapes": [
                {
                    "label": p.label,
                    "points": [[round(x, 2), round(y, 2)] for x, y in p.points],
                    "confidence": round(p.confidence, 4),
                }
                for p in fitted.labels_[k]
            ]
        }
        for k in items
    ]
    return [int(k) for k in items], values, [fitted.image_confidence_[k] for k in items], {}
