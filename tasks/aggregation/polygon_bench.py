"""A seeded simulation of polygon annotators, and the measures ``manage.py bench_vision --shapes polygons``
prints.

Images get 1-4 objects, each a star-shaped polygon of 6-10 vertices around a centre. Each image is drawn
by ``annotators`` workers from a pool of ``4 x annotators``; one in five is careless. Careful workers move
each vertex by about 3% of the object's radius, miss 5% of objects, add a spurious polygon 5% of the time
and pick a wrong class 3% of the time; careless ones move vertices by 12%, miss 25%, add 25% and mislabel
20%.

Measures are over true polygons matched one-to-one (mask IoU >= 0.5, on a raster of the image at
``RESOLUTION`` cells along its longer side) with a method's polygons: mean IoU of the matched pairs,
recall and precision. Baselines: the best single annotator, and the average annotator (every worker's
drawings pooled). Plain vertex averaging, the box benchmark's third measure, has no meaning for polygons
whose vertices do not correspond, so it is not measured here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from tasks.aggregation.boxes import match_pairs
from tasks.aggregation.polygons import Point, PolygonAggregator, PolygonDrawing, mask_iou, rasterise

CLASSES = ("car", "person", "bicycle")
RESOLUTION = 256


@dataclass(frozen=True)
class PolygonScene:
    sizes: dict[str, tuple[float, float]]
    truth: dict[str, list[tuple[tuple[Point, ...], str]]]
    drawings: dict[str, list[PolygonDrawing]]
    annotators: dict[str, list[str]]


def _star(rng: np.random.Generator, width: float, height: float) -> tuple[tuple[Point, ...], float, Point]:
    radius = rng.uniform(0.06, 0.2) * min(width, height)
    cx, cy = rng.uniform(radius, width - radius), rng.uniform(radius, height - radius)
    angles = np.sort(rng.uniform(0, 2 * math.pi, int(rng.integers(6, 11))))
    radii = radius * rng.uniform(0.7, 1.0, len(angles))
    points = tuple(
        (float(cx + r * math.cos(a)), float(cy + r * math.sin(a))) for a, r in zip(angles, radii, strict=True)
    )
    return points, radius, (cx, cy)


def _jitter(
    rng: np.random.Generator, points: tuple[Point, ...], sigma: float, width: float, height: float
) -> tuple[Point, ...]:
    moved = np.array(points) + rng.normal(0.0, sigma, (len(points), 2))
    moved[:, 0] = np.clip(moved[:, 0], 0, width)
    moved[:, 1] = np.clip(moved[:, 1], 0, height)
    return tuple((float(x), float(y)) for x, y in moved)


def simulate_polygons(*, images: int, annotators: int, seed: int) -> PolygonScene:
    rng = np.random.default_rng(seed)
    pool = [f"w{i:03d}" for i in range(annotators * 4)]
    careless = {w for w in pool if rng.random() < 0.2}
    scene = PolygonScene({}, {}, {}, {})
    for n in range(images):
        image = f"img{n:06d}"
        width, height = float(rng.integers(640, 1281)), float(rng.integers(480, 961))
        objects = [
            (_star(rng, width, height), str(CLASSES[int(rng.integers(len(CLASSES)))]))
            for _ in range(int(rng.integers(1, 5)))
        ]
        scene.sizes[image] = (width, height)
        scene.truth[image] = [(points, label) for (points, _, _), label in objects]
        workers = [str(w) for w in rng.choice(pool, size=annotators, replace=False)]
        scene.annotators[image] = workers
        drawn: list[PolygonDrawing] = []
        for worker in workers:
            scale, miss, extra, mislabel = (0.12, 0.25, 0.25, 0.2) if worker in careless else (0.03, 0.05, 0.05, 0.03)
            for (points, radius, _), label in objects:
                if rng.random() < miss:
                    continue
                if rng.random() < mislabel:
                    label = str(CLASSES[int(rng.integers(len(CLASSES)))])
                drawn.append(PolygonDrawing(worker, _jitter(rng, points, scale * radius, width, height), label))
            if rng.random() < extra:
                points, _, _ = _star(rng, width, height)
                drawn.append(PolygonDrawing(worker, points, str(CLASSES[int(rng.integers(len(CLASSES)))])))
        scene.drawings[image] = drawn
    return scene


@dataclass
class PolygonScore:
    ious: list[float] = field(default_factory=list)
    truth: int = 0
    produced: int = 0

    @property
    def mean_iou(self) -> float:
        return float(np.mean(self.ious)) if self.ious else 0.0

    def add(self, truth: list[np.ndarray], produced: list[np.ndarray]) -> None:
        iou = mask_iou(truth, produced)
        self.ious.extend(float(iou[r, c]) for r, c in match_pairs(iou, 0.5))
        self.truth += len(truth)
        self.produced += len(produced)


def run_polygons(*, images: int, annotators: int, seed: int) -> dict[str, float | int | str]:
    scene = simulate_polygons(images=images, annotators=annotators, seed=seed)
    started = time.perf_counter()
    fused = PolygonAggregator().fit(scene.drawings, scene.annotators)
    seconds = time.perf_counter() - started
    ours, everyone = PolygonScore(), PolygonScore()
    singles: dict[str, PolygonScore] = {}
    for image, objects in scene.truth.items():
        width, height = scene.sizes[image]
        cell = max(width, height) / RESOLUTION
        grid = (int(height / cell) + 2, int(width / cell) + 2)
        mask = partial(rasterise, origin=(0.0, 0.0), cell=cell, shape=grid)
        truth = [mask(points) for points, _ in objects]
        ours.add(truth, [mask(p.points) for p in fused.labels_[image]])
        for worker in scene.annotators[image]:
            mine = [mask(d.points) for d in scene.drawings[image] if d.worker == worker]
            singles.setdefault(worker, PolygonScore()).add(truth, mine)
            everyone.add(truth, mine)
    best = max(singles.values(), key=lambda s: s.mean_iou)
    return {
        "shapes": "polygons",
        "images": images,
        "annotators": annotators,
        "seed": seed,
        "fused_mean_iou": round(ours.mean_iou, 4),
        "best_single_annotator_mean_iou": round(best.mean_iou, 4),
        "average_annotator_mean_iou": round(everyone.mean_iou, 4),
        "polygon_recall": round(len(ours.ious) / ours.truth if ours.truth else 0.0, 4),
        "polygon_precision": round(len(ours.ious) / ours.produced if ours.produced else 0.0, 4),
        "seconds": round(seconds, 3),
    }
