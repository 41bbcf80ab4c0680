"""What a job will cost at worst: per assignment and in all, before it is published.

``unit_cost`` is the most one assignment can cost (reward or hourly pay for the full duration, plus the
marketplace's fee); ``estimate_job_cost`` multiplies it out over the job's Hits and answers and adds
the expected gold overhead. Publishing reserves ``estimate.total`` against the budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from django.db.models import Count

from tasks.models import Item, Job, PayMode
from tasks.selectors import JobTotals, get_job_totals
from workforce.marketplaces import mturk_fees
from workforce.models import Marketplace

CENT = Decimal("0.01")


def seconds(delta: timedelta) -> Decimal:
    """A timedelta as exact Decimal seconds."""
    return Decimal(delta.days * 86400 + delta.seconds) + Decimal(delta.microseconds) / Decimal(1_000_000)


def unit_reward(job: Job) -> Decimal:
    """The most one assignment pays its worker: the reward, or the hourly rate for the whole duration."""
    if job.pay_mode == PayMode.HOURLY and job.hourly_rate is not None:
        return (job.hourly_rate * seconds(job.assignment_duration) / 3600).quantize(CENT, ROUND_CEILING)
    return job.reward


def unit_fee(job: Job, *, assignments_per_hit: int | None = None) -> Decimal:
    """The marketplace's fee on one assignment (zero for the internal pool)."""
    if job.marketplace == Marketplace.MTURK:
        per_hit = assignments_per_hit or job.answers_per_hit
        return mturk_fees.assignment_fee(unit_reward(job), assignments_per_hit=per_hit, masters=job.requires_masters)
    return Decimal("0")


def unit_cost(job: Job) -> Decimal:
    return unit_reward(job) + unit_fee(job)


@dataclass(frozen=True)
class CostEstimate:
    items: int
    gold_items: int
    hits: int
    answers_per_item: int
    assignments: int
    reward: Decimal
    fee: Decimal
    rewards: Decimal
    fees: Decimal
    gold_assignments: int
    gold_overhead: Decimal
    currency: str
    mturk_split: mturk_fees.SplitComparison | None = None

    @property
    def total(self) -> Decimal:
        return self.rewards + self.fees + self.gold_overhead

    @property
    def cost_per_label(self) -> Decimal | None:
        return (self.total / self.items).quantize(CENT, ROUND_HALF_UP) if self.items else None


def estimate_job_cost(job: Job, *, unbuilt_only: bool = False, totals: JobTotals | None = None) -> CostEstimate:
    """Worst-case cost of the job's items: Hits x answers x (reward + fee), plus gold overhead.

    Gold overhead: with gold rate g, a worker's tasks are gold g of the time, so g / (1 - g) gold
    assignments come with each paid one. ``unbuilt_only`` counts only items not yet in a Hit; otherwise the
    item counts come from the job's tallies (``totals`` when the caller has read them already).
    """
    if unbuilt_only:
        items = Item.objects.filter(job_id=job.pk, hit_items__isnull=True)
        counts = {row["is_gold"]: row["n"] for row in items.order_by().values("is_gold").annotate(n=Count("id"))}
        regular, gold = counts.get(False, 0), counts.get(True, 0)
    else:
        totals = totals or get_job_totals(job)  # the job's tally: no count over its items
        regular, gold = totals.items, totals.gold_items
    per_hit = max(job.items_per_hit, 1)
    hits = -(-regular // per_hit)
    assignments = hits * job.answers_per_hit
    reward, fee = unit_reward(job), unit_fee(job)
    rate = min(Decimal(str(job.gold_rate or 0)), Decimal("0.9"))  # forms cap it at 0.5; some code sets more
    gold_assignments = int((assignments * rate / (1 - rate)).to_integral_value(ROUND_CEILING)) if gold and rate else 0
    split = None
    if job.marketplace == Marketplace.MTURK and job.answers_per_hit >= mturk_fees.LARGE_HIT_ASSIGNMENTS:
        split = mturk_fees.compare_split(
            reward, assignments=job.answers_per_hit, items=hits, masters=job.requires_masters
        )
    return CostEstimate(
        items=regular,
        gold_items=gold,
        hits=hits,
        answers_per_item=job.answers_per_hit,
        assignments=assignments,
        reward=reward,
        fee=fee,
        rewards=reward * assignments,
        fees=fee * assignments,
        gold_assignments=gold_assignments,
        gold_overhead=(reward + unit_fee(job, assignments_per_hit=1)) * gold_assignments,
        currency=job.currency,
        mturk_split=split,
    )


def hits_cost(job: Job, *, hit_count: int, extra_per_hit: int) -> Decimal:
    """Worst-case cost of ``extra_per_hit`` more answers on each of ``hit_count`` Hits."""
    return unit_cost(job) * hit_count * extra_per_hit
