"""Reconciliation: the ledger's MTurk bonuses (and, given an opening balance, spend) against MTurk's own
records, every difference reported. Reads only; the marketplace is read through ``MarketplaceRecords``."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Sum

from tasks.models import Assignment, CostEntry, CostKind, Hit, Job
from tasks.services.budget import exact
from workforce.marketplaces.mturk_records import MarketplaceRecords
from workforce.models import Marketplace


@dataclass(frozen=True)
class Difference:
    kind: str  # missing_at_marketplace | missing_in_ledger | balance
    worker: str = ""
    assignment: str = ""
    ledger: Decimal | None = None
    marketplace: Decimal | None = None
    detail: str = ""


@dataclass
class Reconciliation:
    job: int
    hits_checked: int
    ledger_bonus_total: Decimal
    marketplace_bonus_total: Decimal
    balance: Decimal | None = None
    expected_balance: Decimal | None = None
    differences: list[Difference] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return str(value) if isinstance(value, Decimal) else value

        return {**plain(asdict(self)), "matches": not self.differences}


def _ledger_bonuses(job: Job) -> Counter[tuple[str, Decimal]]:
    """(worker external id, amount) of every MTurk bonus booked for the job and not reversed."""
    rows = (
        CostEntry.objects.filter(job_id=job.pk, marketplace=Marketplace.MTURK, kind=CostKind.BONUS)
        .filter(reversed_by__isnull=True)
        .values_list("worker__external_id", "amount")
    )
    return Counter((worker or "", amount.quantize(Decimal("0.01"))) for worker, amount in rows)


def reconcile_mturk(
    *,
    job: Job,
    records: MarketplaceRecords,
    opening_balance: Decimal | None = None,
    since: datetime | None = None,
) -> Reconciliation:
    """Compare the job's MTurk bonuses with MTurk's, per worker and amount; with ``opening_balance``
    (the balance at ``since``), also compare MTurk's balance with the opening balance less every MTurk
    amount the ledger booked since then (all jobs)."""
    hit_ids: list[str] = [
        hit_id
        for hit_id in Hit.objects.filter(job_id=job.pk, marketplace=Marketplace.MTURK, external_id__isnull=False)
        .order_by("pk")
        .values_list("external_id", flat=True)
        if hit_id
    ]
    ours = _ledger_bonuses(job)
    theirs: Counter[tuple[str, Decimal]] = Counter()
    assignment_of: dict[tuple[str, Decimal], str] = {}
    for hit_id in hit_ids:
        for bonus in records.list_bonus_payments(hit_id=hit_id):
            key = (bonus.worker_id, bonus.amount.quantize(Decimal("0.01")))
            theirs[key] += 1
            assignment_of.setdefault(key, bonus.assignment_id)
    result = Reconciliation(
        job=job.pk,
        hits_checked=len(hit_ids),
        ledger_bonus_total=sum((amount * n for (_, amount), n in ours.items()), Decimal(0)),
        marketplace_bonus_total=sum((amount * n for (_, amount), n in theirs.items()), Decimal(0)),
    )
    for key, count in sorted((ours - theirs).items()):
        for _ in range(count):
            result.differences.append(
                Difference(kind="missing_at_marketplace", worker=key[0], ledger=key[1], detail="booked, not paid")
            )
    for key, count in sorted((theirs - ours).items()):
        known = Assignment.objects.filter(marketplace=Marketplace.MTURK, external_id=assignment_of[key]).exists()
        for _ in range(count):
            result.differences.append(
                Difference(
                    kind="missing_in_ledger",
                    worker=key[0],
                    assignment=assignment_of[key],
                    marketplace=key[1],
                    detail="paid, not booked" + ("" if known else " (assignment unknown here)"),
                )
            )
    if opening_balance is not None:
        result.balance = records.get_account_balance()
        spent = CostEntry.objects.filter(marketplace=Marketplace.MTURK)
        if since is not None:
            spent = spent.filter(created_at__gte=since)
        result.expected_balance = opening_balance - exact(spent.aggregate(total=Sum("amount"))["total"])
        if result.balance != result.expected_balance:
            result.differences.append(
                Difference(
                    kind="balance",
                    ledger=result.expected_balance,
                    marketplace=result.balance,
                    detail="MTurk's available balance differs from the opening balance less the ledger's MTurk spend",
                )
            )
    return result
