"""Ground Truth's bounding boxes in our shapes format, parsed without Django.

The consolidated label of an object-detection job is ``{"image_size": [{"width", "height", "depth"}],
"annotations": [{"class_id", "left", "top", "width", "height"}]}`` with ``<attribute>-metadata`` holding
``class-map`` (class id -> name) and ``objects`` (one ``{"confidence"}`` per annotation, same order).
A worker's response to a bounding-box task is ``{"boundingBox": {"boundingBoxes": [{"label", "left", "top",
"width", "height"}], "inputImageProperties": {"width", "height"}}}`` (the outer key is the template's element
name, so any single key holding ``boundingBoxes`` is read). Our shape is ``{"label", "box": [x1, y1, x2, y2]}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from workforce.marketplaces.groundtruth.formats import GroundTruthFormatError

OBJECT_DETECTION = "groundtruth/object-detection"


def _finite(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GroundTruthFormatError(f"{where} has a coordinate that is not a finite number")
    return float(value)


def _box(entry: Mapping[str, Any], where: str, scale: tuple[float, float] = (1.0, 1.0)) -> list[float]:
    left, top = _finite(entry.get("left"), where), _finite(entry.get("top"), where)
    width, height = _finite(entry.get("width"), where), _finite(entry.get("height"), where)
    sx, sy = scale
    return [round(v, 2) for v in (left * sx, top * sy, (left + width) * sx, (top + height) * sy)]


def image_size(label: Any) -> tuple[int, int] | None:
    """``(width, height)`` from a consolidated box label's ``image_size``, or None."""
    sizes = label.get("image_size") if isinstance(label, dict) else None
    first = sizes[0] if isinstance(sizes, list) and sizes else None
    if not isinstance(first, dict):
        return None
    width, height = first.get("width"), first.get("height")
    if isinstance(width, int | float) and isinstance(height, int | float) and width > 0 and height > 0:
        return int(width), int(height)
    return None


def consolidated_boxes(label: Any, metadata: Mapping[str, Any], where: str = "label") -> list[dict[str, Any]]:
    """The consolidated boxes as our shapes, each with Ground Truth's per-box ``confidence`` when given."""
    annotations = label.get("annotations") if isinstance(label, dict) else None
    if not isinstance(annotations, list):
        raise GroundTruthFormatError(f"{where} has no 'annotations' list")
    raw_map, raw_objects = metadata.get("class-map"), metadata.get("objects")
    class_map: Mapping[str, Any] = raw_map if isinstance(raw_map, dict) else {}
    objects: list[Any] = raw_objects if isinstance(raw_objects, list) else []
    shapes: list[dict[str, Any]] = []
    for n, entry in enumerate(annotations):
        if not isinstance(entry, dict):
            raise GroundTruthFormatError(f"{where}: annotation {n} is not an object")
        class_id = entry.get("class_id")
        name = class_map.get(str(class_id)) if class_id is not None else None
        shape: dict[str, Any] = {"label": str(name if name is not None else class_id), "box": _box(entry, where)}
        extra = objects[n] if n < len(objects) else None
        if isinstance(extra, dict) and isinstance(extra.get("confidence"), int | float):
            shape["confidence"] = float(extra["confidence"])
        shapes.append(shape)
    return shapes


def bounding_box_answer(content: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ``{"boundingBoxes", "inputImageProperties"}`` part of a worker's answer, or None for other tasks."""
    for value in content.values():
        if isinstance(value, dict) and isinstance(value.get("boundingBoxes"), list):
            return value
    return None


def worker_boxes(content: Mapping[str, Any], size: tuple[float, float] | None, where: str) -> list[dict[str, Any]]:
    """A worker's boxes as our shapes, rescaled to ``size`` when the worker saw the image at another size."""
    answer = bounding_box_answer(content)
    if answer is None:
        raise GroundTruthFormatError(f"{where} holds no bounding boxes")
    seen = answer.get("inputImageProperties")
    scale = (1.0, 1.0)
    if size is not None and isinstance(seen, dict):
        seen_w, seen_h = seen.get("width"), seen.get("height")
        if isinstance(seen_w, int | float) and isinstance(seen_h, int | float) and seen_w > 0 and seen_h > 0:
            scale = (size[0] / float(seen_w), size[1] / float(seen_h))
    shapes: list[dict[str, Any]] = []
    for n, entry in enumerate(answer["boundingBoxes"]):
        if not isinstance(entry, dict) or not isinstance(entry.get("label"), str):
            raise GroundTruthFormatError(f"{where}: box {n} has no label")
        shapes.append({"label": entry["label"], "box": _box(entry, f"{where}: box {n}", scale)})
    return shapes
