"""Polygon consensus: rasterise to masks, fuse by skill-weighted pixel vote, trace back to a polygon.

Per image, every polygon is rasterised on one grid covering all of the image's polygons (longest side
``resolution`` cells). Polygons are clustered across annotators like boxes (optimal one-to-one matching
on mask IoU, most skilled annotator first); a cluster is kept when its annotators carry ``min_support``
of the image's annotator skill. The fused mask is the set of cells whose members' weighted vote reaches
half the cluster's weight; its largest connected part is traced (Moore neighbour tracing) and simplified
(Douglas-Peucker, one cell) into the fused polygon. Confidence: support times the weighted mean IoU of
the members' masks with the fused mask.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from tasks.aggregation.boxes import match_pairs

Point = tuple[float, float]
BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float64]


def rasterise(points: Sequence[Point], *, origin: Point, cell: float, shape: tuple[int, int]) -> BoolArray:
    """Cells (rows x cols) whose centre lies inside the polygon (even-odd rule), vectorised per edge."""
    rows, cols = shape
    ys = origin[1] + (np.arange(rows) + 0.5) * cell
    xs = origin[0] + (np.arange(cols) + 0.5) * cell
    px, py = np.meshgrid(xs, ys)
    inside = np.zeros(shape, dtype=bool)
    pts = np.asarray(points, dtype=float)
    for (x1, y1), (x2, y2) in zip(pts, np.roll(pts, -1, axis=0), strict=True):
        if y1 == y2:
            continue
        crosses = (py >= min(y1, y2)) & (py < max(y1, y2))
        x_at = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (px < x_at)
    return inside


def mask_iou(a: Sequence[BoolArray], b: Sequence[BoolArray]) -> FloatArray:
    out = np.zeros((len(a), len(b)))
    for i, left in enumerate(a):
        for j, right in enumerate(b):
            union = np.count_nonzero(left | right)
            out[i, j] = np.count_nonzero(left & right) / union if union else 0.0
    return out


_NEIGHBOURS = ((0, -1), (-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1))  # clockwise from west


def trace(mask: BoolArray) -> list[tuple[int, int]]:
    """The outer boundary of the (single, connected) foreground of ``mask`` as (row, col) cells, in order."""
    padded = np.pad(mask, 1)
    found = np.argwhere(padded)
    if len(found) == 0:
        return []
    start = (int(found[0][0]), int(found[0][1]))
    if len(found) == 1:
        return [(start[0] - 1, start[1] - 1)]
    contour = [start]
    current, came_from = start, 0  # entered from the west
    for _ in range(4 * padded.size):
        for step in range(8):
            direction = (came_from + step) % 8
            dr, dc = _NEIGHBOURS[direction]
            candidate = (current[0] + dr, current[1] + dc)
            if padded[candidate]:
                came_from = (direction + 5) % 8  # resume the sweep just after the cell we came from
                current = candidate
                break
        if current == start:
            break
        contour.append(current)
    return [(r - 1, c - 1) for r, c in contour]


def simplify(points: FloatArray, tolerance: float) -> FloatArray:
    """Douglas-Peucker simplification of an open polyline."""
    if len(points) < 3:
        return points
    start, end = points[0], points[-1]
    segment = end - start
    length = float(np.hypot(*segment))
    rel = points - start
    if length == 0:
        distances = np.hypot(rel[:, 0], rel[:, 1])
    else:
        distances = np.abs(segment[0] * rel[:, 1] - segment[1] * rel[:, 0]) / length
    index = int(np.argmax(distances))
    if distances[index] <= tolerance:
        return np.vstack([start, end])
    left = simplify(points[: index + 1], tolerance)
    right = simplify(points[index:], tolerance)
    return np.vstack([left[:-1], right])


@dataclass(frozen=True)
class PolygonDrawing:
    worker: str
    points: tuple[Point, ...]
    label: str


@dataclass(frozen=True)
class FusedPolygon:
    points: tuple[Point, ...]
    label: str
    confidence: float
    support: float
    workers: tuple[str, ...]


class PolygonAggregator:
    """Fuse redundant polygons per image; ``fit(drawings, annotators, skills)`` returns self.

    Results: ``labels_`` (image -> fused polygons) and ``image_confidence_``. Skills default to 1.
    """

    def __init__(self, *, iou_threshold: float = 0.5, min_support: float = 0.5, resolution: int = 256) -> None:
        self.iou_threshold = iou_threshold
        self.min_support = min_support
        self.resolution = resolution
        self.labels_: dict[str, list[FusedPolygon]] = {}
        self.image_confidence_: dict[str, float] = {}

    def fit(
        self,
        drawings: Mapping[str, Sequence[PolygonDrawing]],
        annotators: Mapping[str, Sequence[str]] | None = None,
        skills: Mapping[str, float] | None = None,
    ) -> PolygonAggregator:
        skills = skills or {}
        for image, polygons in drawings.items():
            names = list(dict.fromkeys([*(annotators or {}).get(image, ()), *(p.worker for p in polygons)]))
            fused, confidence = self._fit_image(polygons, names, skills)
            self.labels_[image] = fused
            self.image_confidence_[image] = confidence
        return self

    def _fit_image(
        self, polygons: Sequence[PolygonDrawing], annotators: list[str], skills: Mapping[str, float]
    ) -> tuple[list[FusedPolygon], float]:
        if not polygons:
            return [], 1.0
        every = np.array([pt for p in polygons for pt in p.points], dtype=float)
        low, high = every.min(axis=0), every.max(axis=0)
        cell = max(float((high - low).max()) / self.resolution, 1e-9)
        shape = (int(np.ceil((high[1] - low[1]) / cell)) + 1, int(np.ceil((high[0] - low[0]) / cell)) + 1)
        origin = (float(low[0]), float(low[1]))
        masks = [rasterise(p.points, origin=origin, cell=cell, shape=shape) for p in polygons]
        weights = np.array([max(skills.get(p.worker, 1.0), 1e-3) for p in polygons])
        total = sum(max(skills.get(w, 1.0), 1e-3) for w in annotators) or 1.0
        by_worker: dict[str, list[int]] = {}
        for index, polygon in enumerate(polygons):
            by_worker.setdefault(polygon.worker, []).append(index)
        clusters: list[list[int]] = []
        for worker in sorted(by_worker, key=lambda w: (-skills.get(w, 1.0), w)):
            mine = by_worker[worker]
            centres = [masks[c[0]] for c in clusters]
            pairs = match_pairs(mask_iou([masks[i] for i in mine], centres), self.iou_threshold)
            matched = {row for row, _ in pairs}
            for row, col in pairs:
                clusters[col].append(mine[row])
            clusters.extend([mine[row]] for row in range(len(mine)) if row not in matched)
        fused: list[FusedPolygon] = []
        dropped = 0.0
        for members in clusters:
            support = float(weights[members].sum() / total)
            if support < self.min_support - 1e-9:
                dropped = max(dropped, support)
                continue
            votes = np.tensordot(weights[members], np.stack([masks[i] for i in members]).astype(float), axes=1)
            mask = votes >= weights[members].sum() / 2.0
            parts, count = ndimage.label(mask)
            if count > 1:
                sizes = ndimage.sum(mask, parts, index=range(1, count + 1))
                mask = parts == (int(np.argmax(sizes)) + 1)
            if not mask.any():
                continue
            cells = np.array(trace(mask), dtype=float)
            xy = np.column_stack([origin[0] + (cells[:, 1] + 0.5) * cell, origin[1] + (cells[:, 0] + 0.5) * cell])
            closed = simplify(np.vstack([xy, xy[:1]]), cell)[:-1]
            member_ious = mask_iou([masks[i] for i in members], [mask])[:, 0]
            agreement = float(np.average(member_ious, weights=weights[members]))
            label_votes: dict[str, float] = {}
            for i in members:
                label_votes[polygons[i].label] = label_votes.get(polygons[i].label, 0.0) + float(weights[i])
            fused.append(
                FusedPolygon(
                    points=tuple((float(x), float(y)) for x, y in closed),
                    label=max(sorted(label_votes), key=lambda name: label_votes[name]),
                    confidence=min(1.0, support) * agreement,
                    support=support,
                    workers=tuple(sorted({polygons[i].worker for i in members})),
                )
            )
        base = float(np.mean([p.confidence for p in fused])) if fused else 1.0
        return fused, base * (1.0 - min(1.0, dropped))
