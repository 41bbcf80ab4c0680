"""Rebuild the per-job tallies the database triggers keep (``tasks.models.tallies``) from the rows themselves.

The triggers keep the tallies exact on every write; this is the repair: after a bulk load that bypassed the
triggers (``session_replication_role = replica``, ``COPY`` into a restored table) or to verify them.
On PostgreSQL it takes a SHARE lock on the counted tables first, so writers wait until the recount commits
and no change can be counted twice or missed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, Q, Sum

from tasks.models import CostEntry, Hit, HitState, Item, JobCostTally, JobTally
from workforce.audit import Actor, record_audit_event

TALLY_FIELDS = ("hits", "hits_complete", "answers_wanted", "answers_submitted", "slots_taken", "items", "gold_items")


@dataclass(frozen=True)
class RecountResult:
    jobs: int
    corrected: list[int]  # the jobs whose tallies differed from their rows


def _live() -> Q:
    return Q(is_gold=False) & ~Q(state=HitState.CANCELLED)


def count_job_rows(job_ids: Iterable[int] | None) -> dict[int, dict[str, int]]:
    """Each job's tally counted from its Hits and Items (what the triggers should hold)."""
    hits, items = Hit.objects.all(), Item.objects.all()
    if job_ids is not None:
        ids = list(job_ids)
        hits, items = hits.filter(job_id__in=ids), items.filter(job_id__in=ids)
    live = _live()
    counted: dict[int, dict[str, int]] = {}
    for row in (
        hits.values("job_id")
        .order_by()
        .annotate(
            n_hits=Count("id", filter=live),
            n_complete=Count("id", filter=Q(is_gold=False, state=HitState.COMPLETE)),
            n_wanted=Sum("assignments_wanted", filter=live, default=0),
            n_submitted=Sum("assignments_submitted", filter=live, default=0),
            n_taken=Sum("slots_taken", filter=live, default=0),
        )
    ):
        counted[row["job_id"]] = dict.fromkeys(TALLY_FIELDS, 0) | {
            "hits": row["n_hits"],
            "hits_complete": row["n_complete"],
            "answers_wanted": row["n_wanted"],
            "answers_submitted": row["n_submitted"],
            "slots_taken": row["n_taken"],
        }
    for row in (
        items.values("job_id")
        .order_by()
        .annotate(n_items=Count("id", filter=Q(is_gold=False)), n_gold=Count("id", filter=Q(is_gold=True)))
    ):
        counted.setdefault(row["job_id"], dict.fromkeys(TALLY_FIELDS, 0)).update(
            items=row["n_items"], gold_items=row["n_gold"]
        )
    return counted


def _kept(job_ids: list[int] | None) -> dict[int, dict[str, int]]:
    rows = JobTally.objects.all() if job_ids is None else JobTally.objects.filter(job_id__in=job_ids)
    kept: dict[int, dict[str, int]] = {}
    for row in rows.order_by().values("job_id").annotate(**{f"sum_{f}": Sum(f) for f in TALLY_FIELDS}):
        kept[row["job_id"]] = {f: int(row[f"sum_{f}"] or 0) for f in TALLY_FIELDS}
    return kept


CostKey = tuple[str, str, str]  # kind, status, marketplace


def _cost_rows(model: type, job_ids: list[int] | None) -> dict[int, dict[CostKey, Decimal]]:
    """Per job, the non-zero sums of ``model``'s amounts by kind, status and marketplace."""
    qs = model.objects.all() if job_ids is None else model.objects.filter(job_id__in=job_ids)  # type: ignore[attr-defined]
    by_job: dict[int, dict[CostKey, Decimal]] = {}
    for r in qs.values("job_id", "kind", "status", "marketplace").order_by().annotate(total=Sum("amount")):
        if r["total"]:
            by_job.setdefault(r["job_id"], {})[(r["kind"], r["status"], r["marketplace"])] = r["total"]
    return by_job


def recount_tallies(*, actor: Actor, job_ids: list[int] | None = None) -> RecountResult:
    """Replace the tallies of ``job_ids`` (all jobs when None) with counts of their rows; audited."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("LOCK TABLE tasks_hit, tasks_item, tasks_costentry IN SHARE MODE")
        counted = count_job_rows(job_ids)
        kept = _kept(job_ids)
        costs, kept_costs = _cost_rows(CostEntry, job_ids), _cost_rows(JobCostTally, job_ids)
        zero = dict.fromkeys(TALLY_FIELDS, 0)
        jobs = set(counted) | set(kept) | set(costs) | set(kept_costs)
        corrected = sorted(
            j for j in jobs if counted.get(j, zero) != kept.get(j, zero) or costs.get(j, {}) != kept_costs.get(j, {})
        )
        if corrected:
            JobTally.objects.filter(job_id__in=corrected).delete()
            JobCostTally.objects.filter(job_id__in=corrected).delete()
            JobTally.objects.bulk_create(
                [JobTally(job_id=j, shard=0, **counted[j]) for j in corrected if j in counted], batch_size=1000
            )
            JobCostTally.objects.bulk_create(
                [
                    JobCostTally(job_id=j, shard=0, kind=kind, status=status, marketplace=market, amount=total)
                    for j in corrected
                    for (kind, status, market), total in costs.get(j, {}).items()
                ],
                batch_size=1000,
            )
        record_audit_event(
            actor=actor,
            action="tallies.recounted",
            object_type="job_tallies",
            object_id=str(job_ids[0]) if job_ids is not None and len(job_ids) == 1 else "many",
            after={"jobs": len(jobs), "asked": job_ids[:100] if job_ids else "all", "corrected": corrected[:100]},
        )
    return RecountResult(jobs=len(jobs), corrected=corrected)
