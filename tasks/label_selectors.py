"""Read-side queries over a job's consensus labels, for exports, dataset versions and the API.

Labels are read in keyset-paged chunks (``item_id > last``, through the ``(job, item)`` index), so an
export of 500,000 labels holds one chunk in memory and keeps no cursor open between chunks (a streamed
HTTP response may pause for as long as its client likes). Extras (answers, worker scores, cost) are
fetched per chunk with one grouped query each: never a query per row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, Sum

from tasks.models import Answer, ConsensusLabel, CostEntry, HitItem, Item, Job, WorkerJobScore
from workforce.privacy import mask_worker_id

CHUNK = 2000
COST_PLACES = Decimal("0.0001")


@dataclass(frozen=True)
class ExportOptions:
    """What an export holds besides each item's consensus label."""

    answers: bool = False
    scores: bool = False
    cost: bool = False
    min_confidence: float | None = None
    # Marketplace worker ids are personal data: answers carry a stable pseudonym unless the caller may see ids
    # (``workforce.privacy.can_see_worker_ids``) and asked for them.
    worker_ids: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportOptions:
        return cls(
            answers=bool(data.get("answers")),
            scores=bool(data.get("scores")),
            cost=bool(data.get("cost")),
            min_confidence=data.get("min_confidence"),
            worker_ids=bool(data.get("worker_ids")),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "answers": self.answers,
            "scores": self.scores,
            "cost": self.cost,
            "min_confidence": self.min_confidence,
            "worker_ids": self.worker_ids,
        }


@dataclass
class LabelRow:
    """One item's consensus label, with the extras the export asked for."""

    item_id: int
    external_id: str
    payload: dict[str, Any]
    value: Any
    confidence: float
    probabilities: dict[str, float]
    answers_count: int
    method: str
    created_at: datetime
    answers: list[dict[str, Any]] | None = None
    cost: Decimal | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def count_labels(job: Job, *, min_confidence: float | None = None) -> int:
    qs = ConsensusLabel.objects.filter(job=job)
    if min_confidence is not None:
        qs = qs.filter(confidence__gte=min_confidence)
    return qs.count()


def get_consensus_run(job: Job) -> tuple[str, int, dict[str, Any]] | None:
    """The (method, version, parameters) of the job's current consensus, or None before the first run."""
    row = ConsensusLabel.objects.filter(job=job).values_list("method", "version", "parameters").first()
    return (row[0], row[1], row[2]) if row else None


def _worker_scores(job: Job) -> dict[int, dict[str, Any]]:
    rows = WorkerJobScore.objects.filter(job=job).values_list("worker_id", "accuracy", "agreement", "gold_answers")
    return {w: {"accuracy": acc, "agreement": agr, "gold_answers": gold} for w, acc, agr, gold in rows}


def _answers_for(
    item_ids: list[int], scores: dict[int, dict[str, Any]] | None, *, worker_ids: bool = False
) -> dict[int, list[dict[str, Any]]]:
    by_item: dict[int, list[dict[str, Any]]] = defaultdict(list)
    rows = (
        Answer.objects.filter(item_id__in=item_ids)
        .order_by("item_id", "id")
        .values_list("item_id", "worker_id", "worker__external_id", "value", "assignment__submitted_at")
    )
    for item_id, worker_id, worker_external, value, submitted_at in rows:
        entry: dict[str, Any] = {
            "worker": worker_external if worker_ids else mask_worker_id(worker_external),
            "value": value,
            "submitted_at": submitted_at.isoformat() if submitted_at else None,
        }
        if scores is not None:
            entry["worker_score"] = scores.get(worker_id, {"accuracy": None, "agreement": None, "gold_answers": 0})
        by_item[item_id].append(entry)
    return by_item


def _cost_for(item_ids: list[int]) -> dict[int, Decimal]:
    """Each item's share of the money booked against the assignments that answered it (split evenly over
    the items an assignment answered) and against its Hits without an assignment (split over the Hit's items)."""
    cost: dict[int, Decimal] = defaultdict(Decimal)
    pairs = list(Answer.objects.filter(item_id__in=item_ids).values_list("item_id", "assignment_id"))
    assignment_ids = {a for _, a in pairs}
    if assignment_ids:
        booked = dict(
            CostEntry.objects.filter(assignment_id__in=assignment_ids)
            .values("assignment_id")
            .annotate(total=Sum("amount"))
            .values_list("assignment_id", "total")
        )
        sizes = dict(
            Answer.objects.filter(assignment_id__in=booked)
            .values("assignment_id")
            .annotate(n=Count("id"))
            .values_list("assignment_id", "n")
        )
        for item_id, assignment_id in pairs:
            if assignment_id in booked:
                cost[item_id] += booked[assignment_id] / sizes[assignment_id]
    hit_pairs = list(HitItem.objects.filter(item_id__in=item_ids).values_list("item_id", "hit_id"))
    hit_ids = {h for _, h in hit_pairs}
    if hit_ids:
        hit_booked = dict(
            CostEntry.objects.filter(hit_id__in=hit_ids, assignment__isnull=True)
            .values("hit_id")
            .annotate(total=Sum("amount"))
            .values_list("hit_id", "total")
        )
        if hit_booked:
            hit_sizes = dict(
                HitItem.objects.filter(hit_id__in=hit_booked)
                .values("hit_id")
                .annotate(n=Count("id"))
                .values_list("hit_id", "n")
            )
            for item_id, hit_id in hit_pairs:
                if hit_id in hit_booked:
                    cost[item_id] += hit_booked[hit_id] / hit_sizes[hit_id]
    return {item_id: amount.quantize(COST_PLACES) for item_id, amount in cost.items()}


def iter_label_chunks(job: Job, options: ExportOptions, *, chunk_size: int = CHUNK) -> Iterator[list[LabelRow]]:
    """A job's consensus labels in item order, ``chunk_size`` at a time, with the extras ``options`` asks for."""
    scores = _worker_scores(job) if options.scores else None
    base = ConsensusLabel.objects.filter(job=job)
    if options.min_confidence is not None:
        base = base.filter(confidence__gte=options.min_confidence)
    columns = ("item_id", "value", "confidence", "probabilities", "answers_count", "method", "created_at")
    last = 0
    while True:
        # Two index-bounded queries per chunk (labels by (job, item), then their items by primary key): a join
        # would make the planner walk the item table from its start on every chunk.
        raw = list(base.filter(item_id__gt=last).order_by("item_id").values_list(*columns)[:chunk_size])
        if not raw:
            return
        last = raw[-1][0]
        items = {
            pk: (external_id, payload)
            for pk, external_id, payload in Item.objects.filter(id__in=[r[0] for r in raw]).values_list(
                "id", "external_id", "payload"
            )
        }
        rows = [LabelRow(r[0], *items[r[0]], *r[1:]) for r in raw]
        ids = [r.item_id for r in rows]
        if options.answers or options.scores:
            answers = _answers_for(ids, scores, worker_ids=options.worker_ids)
            for row in rows:
                row.answers = answers.get(row.item_id, [])
        if options.cost:
            costs = _cost_for(ids)
            for row in rows:
                row.cost = costs.get(row.item_id, Decimal("0.0000"))
        yield rows


def iter_labels(job: Job, options: ExportOptions, *, chunk_size: int = CHUNK) -> Iterator[LabelRow]:
    for chunk in iter_label_chunks(job, options, chunk_size=chunk_size):
        yield from chunk
