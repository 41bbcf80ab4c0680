"""Read-side queries for the console (API and admin job page): costs, worker scores, lists with filters."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from tasks.models import Assignment, ConsensusLabel, Item, Job, JobCostTally, LabelExport, WorkerJobScore
from workforce.models import Worker
from workforce.privacy import mask_worker_id

# A consensus label at least this confident counts as settled.
CONFIDENT_AT = 0.9
LEDGER_PLACES = Decimal("0.0001")


def count_labeled(job: Job) -> tuple[int, int]:
    """(items with a consensus label, items whose label is confident), through the (job, confidence) index."""
    row = ConsensusLabel.objects.filter(job=job).aggregate(
        labeled=Count("id"), confident=Count("id", filter=Q(confidence__gte=CONFIDENT_AT))
    )
    return row["labeled"], row["confident"]


def count_confident(job: Job) -> int:
    """Items whose consensus label is confident: a range of the (job, confidence) index, read index-only."""
    return ConsensusLabel.objects.filter(job=job, confidence__gte=CONFIDENT_AT).count()


@dataclass(frozen=True)
class CostSummary:
    job: int
    currency: str
    total: Decimal
    committed: Decimal
    charged: Decimal
    by_kind: dict[str, Decimal]
    by_marketplace: dict[str, Decimal]


def _money(amount: Decimal) -> Decimal:
    return amount.quantize(LEDGER_PLACES)


def get_cost_summary(job: Job) -> CostSummary:
    """The ledger's totals for a job (reversals included, so the figures are net), from the job's cost tallies
    (``tasks.models.tallies``: a few rows per job, kept by a trigger on the ledger) in one grouped query."""
    rows = (
        JobCostTally.objects.filter(job=job)
        .values_list("kind", "status", "marketplace")
        .order_by()
        .annotate(total=Sum("amount"))
    )
    by_kind: dict[str, Decimal] = {}
    by_marketplace: dict[str, Decimal] = {}
    by_status: dict[str, Decimal] = {"committed": Decimal("0"), "charged": Decimal("0")}
    for kind, status, marketplace, total in rows:
        by_kind[kind] = by_kind.get(kind, Decimal("0")) + total
        by_marketplace[marketplace] = by_marketplace.get(marketplace, Decimal("0")) + total
        by_status[status] = by_status.get(status, Decimal("0")) + total
    return CostSummary(
        job=job.pk,
        currency=job.currency,
        total=_money(sum(by_status.values(), Decimal("0"))),
        committed=_money(by_status["committed"]),
        charged=_money(by_status["charged"]),
        by_kind={k: _money(v) for k, v in by_kind.items()},
        by_marketplace={k: _money(v) for k, v in by_marketplace.items()},
    )


def list_items(
    job: Job, *, is_gold: bool | None = None, labeled: bool | None = None, external_id: str = ""
) -> QuerySet[Item]:
    qs = Item.objects.filter(job=job)
    if is_gold is not None:
        qs = qs.filter(is_gold=is_gold)
    if external_id:
        qs = qs.filter(external_id=external_id)
    if labeled is not None:
        labeled_ids = ConsensusLabel.objects.filter(job=job).values("item_id")
        qs = qs.filter(id__in=labeled_ids) if labeled else qs.exclude(id__in=labeled_ids)
    return qs


def list_assignments(job: Job, *, state: str = "", worker: str = "", masked: bool = False) -> QuerySet[Assignment]:
    """A job's assignments, by state and by worker: ``worker`` is the marketplace id, or with ``masked``
    (a reader without the identity permission) the pseudonym that reader is shown, never the id itself."""
    qs = Assignment.objects.filter(job=job).select_related("worker")
    if state:
        qs = qs.filter(state=state)
    if worker and masked:
        ids = Worker.objects.filter(assignments__job=job).values_list("external_id", flat=True).distinct()
        qs = qs.filter(worker__external_id__in=[i for i in ids if mask_worker_id(i) == worker])
    elif worker:
        qs = qs.filter(worker__external_id=worker)
    return qs


def list_consensus(
    job: Job, *, min_confidence: float | None = None, max_confidence: float | None = None, label: Any = None
) -> QuerySet[ConsensusLabel]:
    qs = ConsensusLabel.objects.filter(job=job).select_related("item")
    if min_confidence is not None:
        qs = qs.filter(confidence__gte=min_confidence)
    if max_confidence is not None:
        qs = qs.filter(confidence__lte=max_confidence)
    if label is not None:
        qs = qs.filter(value=label)
    return qs


def list_recent_exports(job: Job, *, limit: int = 5) -> list[LabelExport]:
    """The job's latest label exports with their live progress."""
    return list(LabelExport.objects.filter(job=job).order_by("-id")[:limit])


def list_worker_scores(job: Job) -> QuerySet[WorkerJobScore]:
    return WorkerJobScore.objects.filter(job=job).select_related("worker")
