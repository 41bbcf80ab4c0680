"""Consensus: a job's answers, aggregated by its configured method, become ``ConsensusLabel`` rows.

Answers are read in one streamed query and coded as integer arrays for the pure aggregation package;
the job's previous consensus is replaced in one transaction, so readers see the old set or the new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from tasks.aggregation.base import Answers
from tasks.aggregation.registry import CATEGORICAL, get_aggregator
from tasks.models import Answer, ConsensusLabel, Job, JobBlock, Prediction, WorkerJobScore
from tasks.services.bulk import bulk_insert
from tasks.services.errors import ServiceError
from workforce.audit import Actor, record_audit_event
from workforce.scoring import agreement

CHUNK = 50_000


@dataclass(frozen=True)
class ConsensusResult:
    job: int
    method: str
    version: int
    items: int
    answers: int
    mean_confidence: float


def _load(job: Job) -> tuple[list[int], list[int], list[Any]]:
    items: list[int] = []
    workers: list[int] = []
    values: list[Any] = []
    # Gold items have known answers, and workers the job's policy blocked are not trusted.
    blocked = JobBlock.objects.filter(job=job, lifted_at__isnull=True).values("worker_id")
    rows = (
        Answer.objects.filter(job=job, item__is_gold=False)
        .exclude(worker_id__in=blocked)
        .order_by("id")
        .values_list("item_id", "worker_id", "value")
    )
    for item_id, worker_id, value in rows.iterator(chunk_size=CHUNK):
        items.append(item_id)
        workers.append(worker_id)
        values.append(value)
    return items, workers, values


def _add_predictions(job: Job, items: list[int], workers: list[int], values: list[Any]) -> None:
    """Each model that predicted the job's items joins the crowd as one more annotator (ids -1, -2, ...),
    so the aggregation method learns its skill like a worker's. Only items people answered are added."""
    answered = set(items)
    models: dict[str, int] = {}
    rows = (
        Prediction.objects.filter(job=job, item__is_gold=False)
        .order_by("model_name", "item_id")
        .values_list("model_name", "item_id", "value")
    )
    for model_name, item_id, value in rows.iterator(chunk_size=CHUNK):
        if item_id in answered:
            items.append(item_id)
            workers.append(models.setdefault(model_name, -1 - len(models)))
            values.append(value)


def _categorical(
    job: Job, method: str, params: dict[str, Any], items: list[int], workers: list[int], values: list[Any]
) -> tuple[np.ndarray, list[Any], np.ndarray, list[dict[str, float]]]:
    labels = [str(label) for label in job.labels]
    position = {label: i for i, label in enumerate(labels)}
    unknown = {v for v in values if v not in position}
    if unknown:
        raise ServiceError(f"Answers use labels outside the job's label set: {', '.join(map(str, sorted(unknown)))}.")
    task_codes, task_ids = _factorize(items)
    worker_codes, worker_ids = _factorize(workers)
    label_codes = np.fromiter((position[v] for v in values), dtype=np.int64, count=len(values))
    coded = Answers.from_codes(
        task_codes, worker_codes, label_codes, task_ids.tolist(), worker_ids.tolist(), labels, classes=labels
    )
    model = get_aggregator(method, **params).fit(coded)
    classes = [str(c) for c in coded.classes]
    chosen = [classes[c] for c in model.label_codes_]
    probabilities = [
        {label: round(float(p), 6) for label, p in zip(classes, row, strict=True)} for row in model.posterior_
    ]
    return task_ids, chosen, np.asarray(model.confidence_, dtype=float), probabilities


def _multilabel(
    job: Job, method: str, params: dict[str, Any], items: list[int], workers: list[int], values: list[Any]
) -> tuple[np.ndarray, list[Any], np.ndarray, list[dict[str, float]]]:
    import pandas as pd

    base = method if method in CATEGORICAL else "mv"
    frame = pd.DataFrame({"task": items, "worker": workers, "label": values})
    model = get_aggregator("multilabel", base=base, base_params=params).fit(frame)
    presence = model.presence_
    names = list(model.label_names_)
    task_ids = np.asarray([int(t) for t in model.task_names_], dtype=np.int64)
    chosen = [[names[j] for j in np.flatnonzero(row > model.threshold)] for row in presence]
    # The weakest of the per-label decisions is the answer's confidence.
    confidence = np.maximum(presence, 1 - presence).min(axis=1) if names else np.ones(len(task_ids))
    probabilities = [{n: round(float(p), 6) for n, p in zip(names, row, strict=True)} for row in presence]
    return task_ids, chosen, confidence, probabilities


def _agreement_rows(
    job: Job, items: list[int], workers: list[int], values: list[Any], task_ids: np.ndarray, chosen: list[Any], now: Any
) -> list[WorkerJobScore]:
    """Each worker's share of answers equal to the new consensus, as score rows to upsert."""
    consensus = {int(t): (tuple(c) if isinstance(c, list) else c) for t, c in zip(task_ids, chosen, strict=True)}
    match = np.fromiter(
        ((tuple(v) if isinstance(v, list) else v) == consensus.get(i) for i, v in zip(items, values, strict=True)),
        dtype=bool,
        count=len(items),
    )
    worker_codes, worker_ids = _factorize(workers)
    counts = np.bincount(worker_codes, minlength=len(worker_ids))
    matched = np.bincount(worker_codes, weights=match.astype(float), minlength=len(worker_ids))
    share = agreement(matched.astype(np.float64), counts.astype(np.float64))
    return [
        WorkerJobScore(job=job, worker_id=int(w), agreement=float(a), answers=int(n), updated_at=now)
        for w, a, n in zip(worker_ids, share, counts, strict=True)
    ]


def _skill_rows(
    job: Job, items: list[int], workers: list[int], skills: dict[int, float], now: Any
) -> list[WorkerJobScore]:
    answered: dict[int, int] = {}
    for worker in workers:
        answered[worker] = answered.get(worker, 0) + 1
    return [
        WorkerJobScore(job=job, worker_id=worker, agreement=skills.get(worker), answers=count, updated_at=now)
        for worker, count in answered.items()
    ]


def _factorize(values: list[int]) -> tuple[np.ndarray, np.ndarray]:
    uniques, codes = np.unique(np.asarray(values, dtype=np.int64), return_inverse=True)
    return codes, uniques


def compute_consensus(*, job: Job, actor: Actor, method: str | None = None, **params: Any) -> ConsensusResult:
    """Aggregate ``job``'s answers with ``method`` (default: the job's) and replace its consensus."""
    method = method or job.consensus_method
    if job.is_shapes:
        method = "geometry"
    elif method not in CATEGORICAL:
        raise ServiceError(f"Unknown consensus method {method!r}; use one of: {', '.join(CATEGORICAL)}.")
    items, workers, values = _load(job)
    if not items:
        raise ServiceError(f"Job {job.pk} has no answers yet.")
    counts = dict(zip(*np.unique(np.asarray(items, dtype=np.int64), return_counts=True), strict=True))
    humans = len(items)
    _add_predictions(job, items, workers, values)
    skills: dict[int, float] = {}
    if job.is_shapes:
        from tasks.services.shapes import fuse_shapes  # boxes/polygons: geometric consensus

        ids, chosen, confidence_list, skills = fuse_shapes(
            job.task_kind, list(zip(items, workers, values, strict=True))
        )
        task_ids, confidence = np.asarray(ids, dtype=np.int64), np.asarray(confidence_list, dtype=float)
        probabilities: list[dict[str, float]] = [{} for _ in ids]
    else:
        fit = _multilabel if job.is_multilabel else _categorical
        try:
            task_ids, chosen, confidence, probabilities = fit(job, method, params, items, workers, values)
        except (TypeError, ValueError) as exc:
            raise ServiceError(f"Cannot aggregate with these parameters: {exc}") from exc
    now = timezone.now()
    with transaction.atomic():
        Job.objects.select_for_update().filter(pk=job.pk).first()  # one consensus run per job at a time
        version = (ConsensusLabel.objects.filter(job=job).aggregate(v=Max("version"))["v"] or 0) + 1
        ConsensusLabel.objects.filter(job=job).delete()
        stored_params = {k: v for k, v in params.items() if isinstance(v, int | float | str | bool)}
        bulk_insert(
            ConsensusLabel,
            [
                "item_id",
                "job_id",
                "value",
                "confidence",
                "probabilities",
                "method",
                "version",
                "parameters",
                "answers_count",
                "created_at",
            ],
            (
                (
                    int(item_id),
                    job.pk,
                    value,
                    float(conf),
                    probs,
                    method,
                    version,
                    stored_params,
                    int(counts[item_id]),
                    now,
                )
                for item_id, value, conf, probs in zip(task_ids, chosen, confidence, probabilities, strict=True)
            ),
        )
        # Agreement with the consensus feeds each worker's score on the job (for drawings: the mean IoU of
        # the worker's shapes with the fused ones).
        rows = (
            _skill_rows(job, items[:humans], workers[:humans], skills, now)
            if job.is_shapes
            else _agreement_rows(job, items[:humans], workers[:humans], values[:humans], task_ids, chosen, now)
        )
        WorkerJobScore.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["job", "worker"],
            update_fields=["agreement", "answers", "updated_at"],
            batch_size=2000,
        )
        result = ConsensusResult(
            job=job.pk,
            method=method,
            version=version,
            items=len(task_ids),
            answers=humans,
            mean_confidence=round(float(np.mean(confidence)), 4),
        )
        record_audit_event(
            actor=actor,
            action="consensus.computed",
            object_type="job",
            object_id=job.pk,
            after={**result.__dict__, "parameters": stored_params},
        )
    return result
