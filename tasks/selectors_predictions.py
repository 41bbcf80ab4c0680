"""Reads about model predictions: pre-labels for the worker page, rubber-stamping checks, active learning."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, Q
from django.db.models.functions import TruncDate

from tasks.models import Answer, ConsensusLabel, Item, Job, Prediction


def prelabels_for(job: Job, item_ids: Iterable[int]) -> dict[int, Any]:
    """The pre-label to show for each item, when the job shows a model's predictions."""
    if not job.prelabel_model:
        return {}
    rows = Prediction.objects.filter(job=job, model_name=job.prelabel_model, item_id__in=list(item_ids))
    return dict(rows.values_list("item_id", "value"))


def attach_prelabels(job: Job, items: Iterable[Any]) -> None:
    """Give each page item its pre-label (``item.prelabel``, None without one). On a drawing job a predicted
    drawing is also where the editor starts (``item.drawing``, unless the page already holds the worker's own
    drawing), so the worker confirms or corrects the model's boxes or polygons instead of drawing them again."""
    items = list(items)
    found = prelabels_for(job, [item.pk for item in items])
    for item in items:
        item.prelabel = found.get(item.pk)
        if job.is_shapes and isinstance(item.prelabel, dict) and not getattr(item, "drawing", ""):
            item.drawing = json.dumps(item.prelabel)


def count_gold_without_prediction(job: Job) -> int:
    """Gold items the pre-label model has not predicted: on the page they would stand out by having no
    pre-label, so the admin warns about them."""
    if not job.prelabel_model:
        return 0
    predicted = Prediction.objects.filter(job=job, model_name=job.prelabel_model).values("item_id")
    return Item.objects.filter(job=job, is_gold=True).exclude(id__in=predicted).count()


@dataclass(frozen=True)
class PrelabelAcceptance:
    worker_id: int
    worker: str
    shown: int
    accepted: int
    wrong_accepted_on_gold: int

    @property
    def share(self) -> float:
        return self.accepted / self.shown if self.shown else 0.0


def list_prelabel_acceptance(job: Job) -> list[PrelabelAcceptance]:
    """Per worker: answers given where a pre-label was shown, how many kept it, and how many kept a pre-label
    that was wrong on a gold item (the clearest sign of rubber-stamping). One aggregate query."""
    if not job.prelabel_model:
        return []
    rows = (
        Answer.objects.filter(
            job=job,
            item__predictions__model_name=job.prelabel_model,
            item__predictions__created_at__lte=F("created_at"),
        )
        .values("worker_id", "worker__display_name", "worker__external_id")
        .annotate(
            shown=Count("id"),
            accepted=Count("id", filter=Q(value=F("item__predictions__value"))),
            wrong_on_gold=Count(
                "id",
                filter=Q(item__is_gold=True, value=F("item__predictions__value"))
                & ~Q(item__gold_answer=F("item__predictions__value")),
            ),
        )
        .order_by("-accepted", "worker_id")
    )
    return [
        PrelabelAcceptance(
            worker_id=r["worker_id"],
            worker=r["worker__display_name"] or r["worker__external_id"],
            shown=r["shown"],
            accepted=r["accepted"],
            wrong_accepted_on_gold=r["wrong_on_gold"],
        )
        for r in rows
    ]


@dataclass(frozen=True)
class LearningRow:
    item_id: int
    external_id: str
    predicted: Any
    score: float
    consensus: Any
    confidence: float | None

    @property
    def disagrees(self) -> bool:
        return self.consensus is not None and self.consensus != self.predicted


def list_active_learning(
    job: Job, *, model_name: str, order: str = "uncertainty", limit: int = 200
) -> list[LearningRow]:
    """Items by model uncertainty (lowest score first) or by model-vs-consensus disagreement (confident
    consensus that contradicts the model first)."""
    # From the model's own predictions: through ``item__predictions`` another model's row could match.
    rows = Prediction.objects.filter(job=job, model_name=model_name, item__is_gold=False).select_related("item")
    if order == "disagreement":
        rows = (
            rows.filter(item__consensus__isnull=False)
            .exclude(item__consensus__value=F("value"))
            .order_by("-item__consensus__confidence", "item_id")
        )
    else:
        rows = rows.order_by("score", "item_id")
    chosen = list(rows[:limit])
    labels = {c.item_id: c for c in ConsensusLabel.objects.filter(item_id__in=[p.item_id for p in chosen])}
    return [
        LearningRow(
            item_id=p.item_id,
            external_id=p.item.external_id,
            predicted=p.value,
            score=p.score,
            consensus=labels[p.item_id].value if p.item_id in labels else None,
            confidence=labels[p.item_id].confidence if p.item_id in labels else None,
        )
        for p in chosen
    ]


def count_disagreements_by_day(job: Job, *, model_name: str) -> list[dict[str, Any]]:
    """Per day: answers given on items the model predicted, and how many of them contradict the model."""
    rows = (
        Answer.objects.filter(job=job, item__predictions__model_name=model_name, item__is_gold=False)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(
            answers=Count("id"),
            disagreeing=Count("id", filter=~Q(value=F("item__predictions__value"))),
        )
        .order_by("day")
    )
    return [{"day": r["day"], "answers": r["answers"], "disagreeing": r["disagreeing"]} for r in rows]


def list_model_names(job: Job) -> list[str]:
    return list(
        Prediction.objects.filter(job=job).values_list("model_name", flat=True).distinct().order_by("model_name")
    )


def iter_retraining_items(job: Job, *, model_name: str, below_score: float = 0.5) -> Iterable[dict[str, Any]]:
    """Items a model should be retrained on: where the crowd's consensus contradicts it, or where it was
    unsure (score below ``below_score``) and the crowd has a label. Streams rows (no whole list in memory)."""
    rows = (
        Prediction.objects.filter(job=job, model_name=model_name, item__is_gold=False, item__consensus__isnull=False)
        .filter(~Q(item__consensus__value=F("value")) | Q(score__lt=below_score))
        .order_by("item_id")
        .values_list("item__external_id", "item__consensus__value", "item__consensus__confidence", "value", "score")
    )
    for external_id, value, confidence, predicted, score in rows.iterator(chunk_size=5000):
        yield {
            "external_id": external_id,
            "label": value,
            "confidence": confidence,
            "predicted": predicted,
            "score": score,
        }


RETRAINING_COLUMNS = ("external_id", "label", "confidence", "predicted", "score")


def iter_retraining_csv(job: Job, *, model_name: str) -> Iterator[str]:
    """:func:`iter_retraining_items` as CSV lines (a header first); labels that are not text are JSON."""
    out = io.StringIO()
    writer = csv.writer(out)

    def line(values: Iterable[Any]) -> str:
        out.seek(0)
        out.truncate()
        writer.writerow(list(values))
        return out.getvalue()

    yield line(RETRAINING_COLUMNS)
    for row in iter_retraining_items(job, model_name=model_name):
        yield line(
            [
                row["external_id"],
                row["label"] if isinstance(row["label"], str) else json.dumps(row["label"]),
                f"{row['confidence']:.4f}",
                row["predicted"] if isinstance(row["predicted"], str) else json.dumps(row["predicted"]),
                f"{row['score']:.4f}",
            ]
        )
