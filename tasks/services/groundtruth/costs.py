"""Ground Truth's costs as results arrive: a service charge per labeled object, priced by the tier
table ``GROUNDTRUTH_OBJECT_PRICE_TIERS`` (counted per labeling job), and, for the public workforce,
the labeling job's price per task for every worker response. Keys are derived from the labeling job
and the object or assignment, so booking again after a retry or re-import books nothing."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.conf import settings

from tasks.models import Assignment, CostEntry, CostKind, Job, LabelingJob, WorkforceKind
from tasks.services.ledger import CostLine, record_costs
from workforce.models import Marketplace

CONSOLIDATED_WORKER = "groundtruth-consolidated"  # the annotator holding Ground Truth's consolidated labels


def object_price(position: int, tiers: Sequence[tuple[int | None, str]]) -> Decimal:
    """The price of the ``position``-th (1-based) object: the first tier whose bound reaches it."""
    for bound, price in tiers:
        if bound is None or position <= bound:
            return Decimal(price)
    return Decimal(tiers[-1][1]) if tiers else Decimal("0")


def objects_charge(count: int, tiers: Sequence[tuple[int | None, str]]) -> Decimal:
    """The service charge of one labeling job's first ``count`` objects, tier by tier (the sum of
    ``object_price`` over positions 1..count, without a loop over objects)."""
    total, done = Decimal("0"), 0
    for bound, price in tiers:
        upto = count if bound is None else min(count, bound)
        if upto > done:
            total += (upto - done) * Decimal(price)
            done = upto
    if done < count and tiers:  # past the last bound: the last tier's price, as ``object_price`` does
        total += (count - done) * Decimal(tiers[-1][1])
    return total


def estimated_cost(labeling_job: LabelingJob, objects: int) -> Decimal:
    """What ``objects`` labeled objects cost at most: their service charges plus, for the public
    workforce, the task price for each of the ``workers_per_object`` answers (what the reservation holds
    when the labeling job is published)."""
    total = objects_charge(objects, settings.GROUNDTRUTH_OBJECT_PRICE_TIERS)
    if labeling_job.workforce == WorkforceKind.PUBLIC:
        total += labeling_job.task_price * labeling_job.workers_per_object * objects
    return total


@dataclass(frozen=True)
class Pricing:
    """How one labeling job's work is booked: its name (in the ledger keys), the reference on each row, the
    public workforce's price per task (0: none booked) and whether the rows are dated when the work was done
    (imported history) or now (a labeling job run from here)."""

    name: str
    reference: str
    task_price: Decimal = Decimal("0")
    dated: bool = False

    @classmethod
    def of(cls, labeling_job: LabelingJob) -> Pricing:
        public = labeling_job.workforce == WorkforceKind.PUBLIC
        return cls(
            name=labeling_job.name,
            reference=labeling_job.arn or labeling_job.name,
            task_price=labeling_job.task_price if public else Decimal("0"),
        )


def book_groundtruth_costs(
    *,
    job: Job,
    pricing: Pricing,
    objects: Sequence[tuple[str, Mapping[str, Any]]],
    responses: Collection[str] = (),
) -> int:
    """Book the object charges and task prices not yet booked (``Pricing.of`` a labeling job run from here,
    or the pricing given for imported history); returns how many rows were new. Call it inside the
    transaction that records the results.

    Only this labeling job's work is priced: ``objects``, the (item external id, label metadata) of every
    object its output labeled, and ``responses``, its worker responses' assignment external ids, for the
    task price. A labeling job's n-th object charged is priced at tier position n, counting the objects its
    earlier outputs already booked, so another labeling job's output in the same job never moves its tiers
    and is priced by its own import."""
    tiers: Sequence[tuple[int | None, str]] = settings.GROUNDTRUTH_OBJECT_PRICE_TIERS
    prefix = f"gt-object:{pricing.name}:"
    keyed = {f"{prefix}{external_id}": (external_id, metadata) for external_id, metadata in objects}
    booked = CostEntry.objects.filter(job=job, kind=CostKind.GT_OBJECT_CHARGE, idempotency_key__startswith=prefix)
    taken = set(booked.filter(idempotency_key__in=list(keyed)).values_list("idempotency_key", flat=True))
    before = booked.count()
    new = [(key, value) for key, value in keyed.items() if key not in taken]
    lines = [
        CostLine(
            job_id=job.pk,
            kind=CostKind.GT_OBJECT_CHARGE,
            amount=object_price(position, tiers),
            idempotency_key=key,
            marketplace=Marketplace.GROUNDTRUTH,
            currency="USD",
            reference=pricing.reference,
            memo=f"Ground Truth object {external_id}",
            created_at=_labeled_at(metadata) if pricing.dated else None,
        )
        for position, (key, (external_id, metadata)) in enumerate(new, start=before + 1)
    ]
    if pricing.task_price > 0 and responses:
        tasks = (
            Assignment.objects.filter(job=job, marketplace=Marketplace.GROUNDTRUTH, external_id__in=list(responses))
            .exclude(worker__external_id=CONSOLIDATED_WORKER)  # Ground Truth's own boxes, not a paid task
            .values_list("id", "external_id", "hit_id", "worker_id", "submitted_at")
        )
        lines += [
            CostLine(
                job_id=job.pk,
                kind=CostKind.WORKFORCE_PRICE,
                amount=pricing.task_price,
                idempotency_key=f"gt-task:{external_id}",
                marketplace=Marketplace.GROUNDTRUTH,
                currency="USD",
                hit_id=hit_id,
                assignment_id=assignment_id,
                worker_id=worker_id,
                reference=pricing.reference,
                created_at=submitted_at if pricing.dated else None,
            )
            for assignment_id, external_id, hit_id, worker_id, submitted_at in tasks
        ]
    return record_costs(lines)


def _labeled_at(metadata: Any) -> datetime | None:
    """When Ground Truth labeled the object (its metadata's ``creation-date``, read as UTC), or None."""
    value = metadata.get("creation-date") if isinstance(metadata, dict) else None
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
