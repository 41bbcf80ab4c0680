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
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, Sum

from tasks.models import Answer, ConsensusLabel, CostEntry, HitItem, Item, Job, WorkerJobScore
from tasks.services.budget import exact
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


def _labelled(item_field: str) -> Q:
    """The item named by ``item_field`` has a consensus label (it is an exported row)."""
    return Q(**{f"{item_field}__consensus__isnull": False})


@dataclass
class CostSpread:
    """How the job's ledger total is spread over its labelled items (the export's ``cost`` column).

    Each labelled item carries (1) its share of the money booked against each assignment that answered
    it, split evenly over the *labelled* items that assignment answered (so the share of the gold answers
    beside them stays with them), (2) likewise its share of the money booked against its Hits without an
    assignment (MTurk's escrow for open slots), and (3) an equal share of the ``overhead``: every row
    attributed to no labelled item (Hits of gold only, bonuses without an assignment, Ground Truth object
    charges, work on items without a label). The column is rounded to 4 places carrying the remainder
    from row to row, so the rows of a full export add up to the ledger total exactly."""

    labels: int
    overhead: Decimal
    exact_so_far: Decimal = Decimal(0)
    shown_so_far: Decimal = Decimal(0)

    def take(self, direct: Decimal) -> Decimal:
        """The next row's cost (rows in item order) given its directly attributed money."""
        self.exact_so_far += direct + (self.overhead / self.labels if self.labels else Decimal(0))
        shown = self.exact_so_far.quantize(COST_PLACES, ROUND_HALF_UP) - self.shown_so_far
        self.shown_so_far += shown
        return shown


def get_cost_spread(job: Job) -> CostSpread:
    """The job's overhead to spread (its ledger total less what is attributed to labelled items) and
    its number of labels: one aggregate over the job's ledger rows and one count."""
    labelled_answers = Answer.objects.filter(_labelled("item"), assignment_id=OuterRef("assignment_id"))
    labelled_hit_items = HitItem.objects.filter(_labelled("item"), hit_id=OuterRef("hit_id"))
    sums = CostEntry.objects.filter(job_id=job.pk).aggregate(
        total=Sum("amount"),
        by_assignment=Sum("amount", filter=Q(assignment__isnull=False) & Q(Exists(labelled_answers))),
        by_hit=Sum("amount", filter=Q(assignment__isnull=True, hit__isnull=False) & Q(Exists(labelled_hit_items))),
    )
    overhead = exact(sums["total"]) - exact(sums["by_assignment"]) - exact(sums["by_hit"])
    return CostSpread(labels=ConsensusLabel.objects.filter(job_id=job.pk).count(), overhead=overhead)


def _cost_for(item_ids: list[int]) -> dict[int, Decimal]:
    """Each labelled item's directly attributed money, unrounded (see ``CostSpread``): its share of what
    was booked against the assignments that answered it, split evenly over the labelled items each
    assignment answered, and of what was booked against its Hits without an assignment, split over the
    Hit's labelled items. A few grouped queries for the chunk, never one per row."""
    cost: dict[int, Decimal] = defaultdict(Decimal)
    pairs = list(Answer.objects.filter(item_id__in=item_ids).values_list("item_id", "assignment_id"))
    assignment_ids = {a for _, a in pairs}
    if assignment_ids:
        booked = {
            a: exact(total)
            for a, total in CostEntry.objects.filter(assignment_id__in=assignment_ids)
            .values("assignment_id")
            .annotate(total=Sum("amount"))
            .values_list("assignment_id", "total")
            .order_by()
        }
        sizes = dict(
            Answer.objects.filter(_labelled("item"), assignment_id__in=booked)
            .values("assignment_id")
            .annotate(n=Count("id"))
            .values_list("assignment_id", "n")
            .order_by()
        )
        for item_id, assignment_id in pairs:
            if assignment_id in booked and sizes.get(assignment_id):
                cost[item_id] += booked[assignment_id] / sizes[assignment_id]
    hit_pairs = list(HitItem.objects.filter(item_id__in=item_ids).values_list("item_id", "hit_id"))
    hit_ids = {h for _, h in hit_pairs}
    if hit_ids:
        hit_booked = {
            h: exact(total)
            for h, total in CostEntry.objects.filter(hit_id__in=hit_ids, assignment__isnull=True)
            .values("hit_id")
            .annotate(total=Sum("amount"))
            .values_list("hit_id", "total")
            .order_by()
        }
        if hit_booked:
            hit_sizes = dict(
                HitItem.objects.filter(_labelled("item"), hit_id__in=hit_booked)
                .values("hit_id")
                .annotate(n=Count("id"))
                .values_list("hit_id", "n")
                .order_by()
            )
            for item_id, hit_id in hit_pairs:
                if hit_id in hit_booked and hit_sizes.get(hit_id):
                    cost[item_id] += hit_booked[hit_id] / hit_sizes[hit_id]
    return cost


def iter_label_chunks(job: Job, options: ExportOptions, *, chunk_size: int = CHUNK) -> Iterator[list[LabelRow]]:
    """A job's consensus labels in item order, ``chunk_size`` at a time, with the extras ``options`` asks for."""
    scores = _worker_scores(job) if options.scores else None
    spread = get_cost_spread(job) if options.cost else None
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
        if spread is not None:
            costs = _cost_for(ids)
            for row in rows:
                row.cost = spread.take(costs.get(row.item_id, Decimal(0)))
        yield rows


def iter_labels(job: Job, options: ExportOptions, *, chunk_size: int = CHUNK) -> Iterator[LabelRow]:
    for chunk in iter_label_chunks(job, options, chunk_size=chunk_size):
        yield from chunk
