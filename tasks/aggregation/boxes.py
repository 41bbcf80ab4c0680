"""Bounding-box consensus: match each annotator's boxes across annotators, cluster, fuse.

For each image, annotators are visited from the most to the least skilled. Each one's boxes are matched
to the clusters built so far by an optimal one-to-one assignment on IoU (Hungarian algorithm, pairs
below ``iou_threshold`` never match); a box left unmatched starts a new cluster. A cluster is kept when
the annotators who drew it carry at least ``min_support`` of the skill of everyone who annotated the
image. A kept cluster's box is the skill-weighted median of each edge (robust to one careless drawing,
unlike a mean), and its class the skill-weighted vote of its members.

Skills are learned, not given: after a pass, an annotator's skill is the mean IoU of their boxes with
the fused boxes they belong to (a box in a dropped cluster counts 0) and their edge variance the mean
squared edge error relative to box size, both smoothed towards the crowd's mean; the images are then
fused again with those weights (``n_passes``). Gold boxes can replace the learned
skills by passing ``skills``.

Confidence of a fused box: the share of annotator skill that drew it times the skill-weighted mean IoU
of its members with it. Confidence of an image: the mean of its boxes' confidence, lowered by the
largest support a dropped cluster had (a disputed object makes the whole image doubtful).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

FloatArray = NDArray[np.float64]


def iou_matrix(a: FloatArray, b: FloatArray) -> FloatArray:
    """IoU of every box in ``a`` (n x 4, x1 y1 x2 y2) with every box in ``b`` (m x 4)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


Box = tuple[float, float, float, float]


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two boxes (x1, y1, x2, y2), in plain floats for the per-image inner loops."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_pairs(iou: FloatArray, threshold: float) -> list[tuple[int, int]]:
    """The one-to-one matching maximising total IoU, keeping only pairs at or above ``threshold``."""
    if iou.size == 0:
        return []
    rows, cols = linear_sum_assignment(-iou)
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if iou[r, c] >= threshold]


def weighted_median(values: FloatArray, weights: FloatArray) -> FloatArray:
    """Column-wise weighted median of ``values`` (n x d); the lower median on an exact half."""
    order = np.argsort(values, axis=0)
    sorted_values = np.take_along_axis(values, order, axis=0)
    sorted_weights = weights[order]
    cumulative = np.cumsum(sorted_weights, axis=0)
    half = cumulative[-1] / 2.0
    index = (cumulative < half[None, :]).sum(axis=0)
    return sorted_values[np.minimum(index, len(values) - 1), np.arange(values.shape[1])]


@dataclass(frozen=True)
class Drawing:
    """One annotator's box on one image."""

    worker: str
    box: tuple[float, float, float, float]
    label: str


@dataclass(frozen=True)
class FusedBox:
    box: Box
    label: str
    confidence: float
    support: float
    workers: tuple[str, ...]


@dataclass
class _Cluster:
    members: list[int] = field(default_factory=list)  # indices into the image's drawings


@dataclass
class ImageResult:
    boxes: list[FusedBox]
    confidence: float
    clusters: list[list[int]]  # every cluster (kept or not) as drawing indices, for skills and diagnostics
    kept: list[bool]


class BoxAggregator:
    """Fuse redundant bounding boxes per image. ``fit(drawings, annotators)`` returns self.

    ``drawings``: image id -> that image's boxes from every annotator; ``annotators``: image id -> the
    annotators who worked on it (including those who drew nothing), defaulting to those who drew.
    Results: ``labels_`` (image -> fused boxes), ``image_confidence_`` and ``skills_`` (worker -> skill).
    """

    def __init__(
        self,
        *,
        iou_threshold: float = 0.5,
        min_support: float = 0.5,
        n_passes: int = 2,
        fuse: str = "weighted_median",
        prior_weight: float = 2.0,
    ) -> None:
        if fuse not in ("weighted_median", "mean"):
            raise ValueError("fuse must be 'weighted_median' or 'mean'.")
        self.iou_threshold = iou_threshold
        self.min_support = min_support
        self.n_passes = max(1, n_passes)
        self.fuse = fuse
        self.prior_weight = prior_weight
        self.labels_: dict[str, list[FusedBox]] = {}
        self.image_confidence_: dict[str, float] = {}
        self.skills_: dict[str, float] = {}
        self.edge_variance_: dict[str, float] = {}

    def fit(
        self,
        drawings: Mapping[str, Sequence[Drawing]],
        annotators: Mapping[str, Sequence[str]] | None = None,
        skills: Mapping[str, float] | None = None,
    ) -> BoxAggregator:
        workers = {d.worker for boxes in drawings.values() for d in boxes}
        if annotators:
            workers.update(w for names in annotators.values() for w in names)
        learn = skills is None
        current = dict.fromkeys(workers, 1.0) if skills is None else {w: float(skills.get(w, 1.0)) for w in workers}
        passes = self.n_passes if learn else 1
        results: dict[str, ImageResult] = {}
        variance: dict[str, float] | None = None
        for _ in range(passes):
            results = {
                image: self._fit_image(boxes, self._annotators(image, boxes, annotators), current, variance)
                for image, boxes in drawings.items()
            }
            if learn:
                current, variance = self._learn_skills(drawings, results, workers)
        self.skills_ = current
        self.edge_variance_ = variance or {}
        self.labels_ = {image: result.boxes for image, result in results.items()}
        self.image_confidence_ = {image: result.confidence for image, result in results.items()}
        return self

    @staticmethod
    def _annotators(image: str, boxes: Sequence[Drawing], annotators: Mapping[str, Sequence[str]] | None) -> list[str]:
        names = list(annotators.get(image, ())) if annotators else []
        return list(dict.fromkeys([*names, *(d.worker for d in boxes)]))

    def _fit_image(
        self,
        boxes: Sequence[Drawing],
        annotators: list[str],
        skills: Mapping[str, float],
        variance: Mapping[str, float] | None = None,
    ) -> ImageResult:
        # Images hold a handful of boxes, so plain Python floats beat numpy's per-call overhead here.
        coords: list[Box] = [(float(d.box[0]), float(d.box[1]), float(d.box[2]), float(d.box[3])) for d in boxes]
        weights = [max(skills.get(d.worker, 1.0), 1e-3) for d in boxes]
        total = sum(max(skills.get(w, 1.0), 1e-3) for w in annotators) or 1.0
        by_worker: dict[str, list[int]] = {}
        for index, drawing in enumerate(boxes):
            by_worker.setdefault(drawing.worker, []).append(index)
        clusters: list[_Cluster] = []
        sums: list[list[float]] = []  # per cluster: weighted edge sums and the weight, for its running centre
        for worker in sorted(by_worker, key=lambda w: (-skills.get(w, 1.0), w)):
            mine = by_worker[worker]
            pairs: list[tuple[int, int]] = []
            if sums:
                centres = [(s[0] / s[4], s[1] / s[4], s[2] / s[4], s[3] / s[4]) for s in sums]
                iou = np.array([[box_iou(coords[i], c) for c in centres] for i in mine])
                pairs = match_pairs(iou, self.iou_threshold)
            matched = {row for row, _ in pairs}
            for row, col in pairs:
                index = mine[row]
                clusters[col].members.append(index)
                w = weights[index]
                running = sums[col]
                for edge in range(4):
                    running[edge] += w * coords[index][edge]
                running[4] += w
            for row, index in enumerate(mine):
                if row not in matched:
                    clusters.append(_Cluster([index]))
                    w = weights[index]
                    sums.append(
                        [w * coords[index][0], w * coords[index][1], w * coords[index][2], w * coords[index][3], w]
                    )
        fused: list[FusedBox] = []
        kept: list[bool] = []
        dropped_support = 0.0
        for cluster in clusters:
            members = cluster.members
            member_weight = sum(weights[i] for i in members)
            support = member_weight / total
            if support < self.min_support - 1e-9:
                kept.append(False)
                dropped_support = max(dropped_support, support)
                continue
            kept.append(True)
            box = self._fuse([coords[i] for i in members], [weights[i] for i in members], members, boxes, variance)
            agreement = sum(weights[i] * box_iou(coords[i], box) for i in members) / member_weight
            votes: dict[str, float] = {}
            for index in members:
                votes[boxes[index].label] = votes.get(boxes[index].label, 0.0) + weights[index]
            label = max(sorted(votes), key=lambda name: votes[name])
            fused.append(
                FusedBox(
                    box=box,
                    label=label,
                    confidence=min(1.0, support) * agreement,
                    support=support,
                    workers=tuple(sorted({boxes[i].worker for i in members})),
                )
            )
        base = sum(b.confidence for b in fused) / len(fused) if fused else 1.0
        return ImageResult(
            boxes=fused,
            confidence=base * (1.0 - min(1.0, dropped_support)),
            clusters=[c.members for c in clusters],
            kept=kept,
        )

    def _fuse(
        self,
        coords: list[Box],
        weights: list[float],
        members: list[int],
        boxes: Sequence[Drawing],
        variance: Mapping[str, float] | None,
    ) -> Box:
        if self.fuse == "mean":
            n = len(coords)
            return (
                sum(c[0] for c in coords) / n,
                sum(c[1] for c in coords) / n,
                sum(c[2] for c in coords) / n,
                sum(c[3] for c in coords) / n,
            )
        if variance is None:
            median = weighted_median(np.array(coords), np.array(weights))
            return (float(median[0]), float(median[1]), float(median[2]), float(median[3]))
        # Inverse-variance weighting of each annotator's edges: the efficient estimate once their noise is known.
        precision = [1.0 / variance.get(boxes[i].worker, 1.0) for i in members]
        norm = sum(precision)
        return (
            sum(p * c[0] for p, c in zip(precision, coords, strict=True)) / norm,
            sum(p * c[1] for p, c in zip(precision, coords, strict=True)) / norm,
            sum(p * c[2] for p, c in zip(precision, coords, strict=True)) / norm,
            sum(p * c[3] for p, c in zip(precision, coords, strict=True)) / norm,
        )

    def _learn_skills(
        self, drawings: Mapping[str, Sequence[Drawing]], results: Mapping[str, ImageResult], workers: set[str]
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Per annotator: skill (mean IoU with the fused boxes, 0 for a dropped box) and edge variance
        (mean squared edge error relative to the fused box's size), both smoothed towards the crowd."""
        scores: dict[str, list[float]] = {w: [] for w in workers}
        errors: dict[str, list[float]] = {w: [] for w in workers}
        for image, result in results.items():
            boxes = drawings[image]
            fused_iter = iter(result.boxes)
            for members, kept in zip(result.clusters, result.kept, strict=True):
                if not kept:
                    for index in members:
                        scores[boxes[index].worker].append(0.0)
                    continue
                fused = next(fused_iter).box
                width = max(fused[2] - fused[0], 1e-6)
                height = max(fused[3] - fused[1], 1e-6)
                for index in members:
                    box = boxes[index].box
                    error = (
                        ((box[0] - fused[0]) / width) ** 2
                        + ((box[1] - fused[1]) / height) ** 2
                        + ((box[2] - fused[2]) / width) ** 2
                        + ((box[3] - fused[3]) / height) ** 2
                    ) / 4.0
                    scores[boxes[index].worker].append(box_iou(box, fused))
                    errors[boxes[index].worker].append(error)
        k = self.prior_weight
        every = [s for values in scores.values() for s in values]
        mean = float(np.mean(every)) if every else 1.0
        every_error = [e for values in errors.values() for e in values]
        mean_error = float(np.mean(every_error)) if every_error else 1.0
        skills = {w: (sum(values) + k * mean) / (len(values) + k) for w, values in scores.items()}
        variance = {w: max((sum(v) + k * mean_error) / (len(v) + k), 1e-8) for w, v in errors.items()}
        return skills, variance


@dataclass(frozen=True)
class ShapeGrade:
    """How one annotator's shapes on an image compare with the gold shapes (matched at an IoU threshold)."""

    matched: int
    precision: float
    recall: float
    f1: float
    mean_iou: float


def grade_shapes(
    truth: FloatArray, drawn: FloatArray, *, iou: FloatArray | None = None, threshold: float = 0.5
) -> ShapeGrade:
    """Grade drawn boxes (or any shapes, given their IoU matrix) against gold: one-to-one matches at
    ``threshold``; precision, recall, F1 and the matched pairs' mean IoU. No truth and no drawing is perfect."""
    if iou is None:
        iou = iou_matrix(np.asarray(truth, dtype=float).reshape(-1, 4), np.asarray(drawn, dtype=float).reshape(-1, 4))
    n_truth, n_drawn = iou.shape
    if n_truth == 0 and n_drawn == 0:
        return ShapeGrade(0, 1.0, 1.0, 1.0, 1.0)
    pairs = match_pairs(iou, threshold)
    matched = len(pairs)
    precision = matched / n_drawn if n_drawn else 0.0
    recall = matched / n_truth if n_truth else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    mean = float(np.mean([iou[r, c] for r, c in pairs])) if pairs else 0.0
    return ShapeGrade(matched, precision, recall, f1, mean)
