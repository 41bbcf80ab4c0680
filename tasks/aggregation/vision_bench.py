"""A seeded simulation of box annotators, and the measures ``manage.py bench_vision`` prints.

Images get 1-5 objects of random size and class. Each image is drawn by ``annotators`` workers taken
from a pool of ``4 x annotators`` workers; one in five workers is careless. Careful workers jitter
each edge by about 3% of the box's size, miss 5% of objects, add a spurious box 5% of the time and pick
a wrong class 3% of the time; careless ones jitter by 12%, miss 25%, add 25% and mislabel 20%.

Measures are over ground-truth boxes matched one-to-one (IoU >= 0.5) with a method's boxes: mean IoU of
the matched pairs (localisation), recall (matched / truth) and precision (matched / produced).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from tasks.aggregation.boxes import BoxAggregator, Drawing, iou_matrix, match_pairs

CLASSES = ("car", "person", "bicycle")


@dataclass(frozen=True)
class Scene:
    truth: dict[str, list[tuple[tuple[float, float, float, float], str]]]
    drawings: dict[str, list[Drawing]]
    annotators: dict[str, list[str]]


def _jitter(rng: np.random.Generator, box: np.ndarray, scale: float, width: float, height: float) -> np.ndarray:
    w, h = box[2] - box[0], box[3] - box[1]
    noise = rng.normal(0.0, scale, 4) * np.array([w, h, w, h])
    out = box + noise
    out[[0, 2]] = np.clip(out[[0, 2]], 0, width)
    out[[1, 3]] = np.clip(out[[1, 3]], 0, height)
    if out[2] - out[0] < 2:
        out[2] = min(width, out[0] + 2)
    if out[3] - out[1] < 2:
        out[3] = min(height, out[1] + 2)
    return out


def simulate(*, images: int, annotators: int, seed: int) -> Scene:
    rng = np.random.default_rng(seed)
    pool = [f"w{i:03d}" for i in range(max(annotators * 4, annotators))]
    careless = {w for w in pool if rng.random() < 0.2}
    truth: dict[str, list[tuple[tuple[float, float, float, float], str]]] = {}
    drawings: dict[str, list[Drawing]] = {}
    who: dict[str, list[str]] = {}
    for n in range(images):
        image = f"img{n:06d}"
        width, height = float(rng.integers(640, 1281)), float(rng.integers(480, 961))
        objects = []
        for _ in range(int(rng.integers(1, 6))):
            w, h = rng.uniform(0.08, 0.4) * width, rng.uniform(0.08, 0.4) * height
            x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
            objects.append(((x, y, x + w, y + h), str(CLASSES[int(rng.integers(len(CLASSES)))])))
        truth[image] = objects
        workers = [str(w) for w in rng.choice(pool, size=annotators, replace=False)]
        who[image] = workers
        boxes: list[Drawing] = []
        for worker in workers:
            sloppy = worker in careless
            scale, miss, extra, mislabel = (0.12, 0.25, 0.25, 0.2) if sloppy else (0.03, 0.05, 0.05, 0.03)
            for box, label in objects:
                if rng.random() < miss:
                    continue
                drawn = _jitter(rng, np.array(box), scale, width, height)
                if rng.random() < mislabel:
                    label = str(CLASSES[int(rng.integers(len(CLASSES)))])
                boxes.append(Drawing(worker, (drawn[0], drawn[1], drawn[2], drawn[3]), label))
            if rng.random() < extra:
                w, h = rng.uniform(0.05, 0.3) * width, rng.uniform(0.05, 0.3) * height
                x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
                boxes.append(Drawing(worker, (x, y, x + w, y + h), str(CLASSES[int(rng.integers(len(CLASSES)))])))
        drawings[image] = boxes
    return Scene(truth=truth, drawings=drawings, annotators=who)


@dataclass
class Score:
    ious: list[float]
    truth: int = 0
    produced: int = 0

    @property
    def mean_iou(self) -> float:
        return float(np.mean(self.ious)) if self.ious else 0.0

    @property
    def recall(self) -> float:
        return len(self.ious) / self.truth if self.truth else 0.0

    @property
    def precision(self) -> float:
        return len(self.ious) / self.produced if self.produced else 0.0


def score_boxes(
    truth: list[tuple[float, float, float, float]], produced: list[tuple[float, float, float, float]], into: Score
) -> None:
    t, p = np.array(truth, dtype=float).reshape(-1, 4), np.array(produced, dtype=float).reshape(-1, 4)
    iou = iou_matrix(t, p)
    into.ious.extend(float(iou[r, c]) for r, c in match_pairs(iou, 0.5))
    into.truth += len(t)
    into.produced += len(p)


def run(*, images: int, annotators: int, seed: int) -> dict[str, float | int]:
    scene = simulate(images=images, annotators=annotators, seed=seed)
    started = time.perf_counter()
    fused = BoxAggregator().fit(scene.drawings, scene.annotators)
    seconds = time.perf_counter() - started
    averaged = BoxAggregator(fuse="mean", n_passes=1).fit(scene.drawings, scene.annotators)
    ours, average = Score([]), Score([])
    singles: dict[str, Score] = {}
    for image, objects in scene.truth.items():
        truth = [box for box, _ in objects]
        score_boxes(truth, [b.box for b in fused.labels_[image]], ours)
        score_boxes(truth, [b.box for b in averaged.labels_[image]], average)
        for worker in scene.annotators[image]:
            mine = [d.box for d in scene.drawings[image] if d.worker == worker]
            score_boxes(truth, mine, singles.setdefault(worker, Score([])))
    best = max(singles.values(), key=lambda s: s.mean_iou)
    return {
        "images": images,
        "annotators": annotators,
        "seed": seed,
        "fused_mean_iou": round(ours.mean_iou, 4),
        "best_single_annotator_mean_iou": round(best.mean_iou, 4),
        "cluster_average_mean_iou": round(average.mean_iou, 4),
        "box_recall": round(ours.recall, 4),
        "box_precision": round(ours.precision, 4),
        "seconds": round(seconds, 3),
    }
