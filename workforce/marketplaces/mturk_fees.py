"""Amazon MTurk's fees as pure ``Decimal`` arithmetic (no Django, no boto3).

Fee schedule: 20% of each reward and bonus; 20% more on the rewards of a HIT with 10 or more
assignments; 5% more on rewards for HITs that require the Masters qualification; at least $0.01 per
assignment and per bonus. Fees are rounded to the cent, half up, per assignment (and per bonus).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
BASE_RATE = Decimal("0.20")
LARGE_HIT_RATE = Decimal("0.20")
MASTERS_RATE = Decimal("0.05")
MINIMUM_FEE = Decimal("0.01")
LARGE_HIT_ASSIGNMENTS = 10
MAX_SMALL_HIT_ASSIGNMENTS = LARGE_HIT_ASSIGNMENTS - 1


class AmountError(TypeError, ValueError):
    """An amount that is not a Decimal: both a type error and a bad value to callers."""


def _money(value: Decimal) -> Decimal:
    if not isinstance(value, Decimal):
        raise AmountError("MTurk fees are computed on Decimal amounts only.")
    if not value.is_finite() or value < 0:
        raise ValueError("Amounts must be finite, non-negative Decimals.")
    return value


def fee_rate(*, assignments_per_hit: int, masters: bool = False) -> Decimal:
    """The commission rate on rewards of a HIT with ``assignments_per_hit`` assignments."""
    if assignments_per_hit < 1:
        raise ValueError("A HIT has at least one assignment.")
    rate = BASE_RATE
    if assignments_per_hit >= LARGE_HIT_ASSIGNMENTS:
        rate += LARGE_HIT_RATE
    if masters:
        rate += MASTERS_RATE
    return rate


def assignment_fee(reward: Decimal, *, assignments_per_hit: int, masters: bool = False) -> Decimal:
    """MTurk's fee on one assignment's reward."""
    fee = (_money(reward) * fee_rate(assignments_per_hit=assignments_per_hit, masters=masters)).quantize(
        CENT, ROUND_HALF_UP
    )
    return max(fee, MINIMUM_FEE)


def bonus_fee(amount: Decimal) -> Decimal:
    """MTurk's fee on one bonus (20%, at least $0.01)."""
    return max((_money(amount) * BASE_RATE).quantize(CENT, ROUND_HALF_UP), MINIMUM_FEE)


@dataclass(frozen=True)
class HitCost:
    """Rewards, fees and their total for ``hits`` HITs (``assignments`` assignments in all)."""

    hits: int
    assignments: int
    rewards: Decimal
    fees: Decimal

    @property
    def total(self) -> Decimal:
        return self.rewards + self.fees


def hit_cost(reward: Decimal, *, assignments_per_hit: int, hits: int = 1, masters: bool = False) -> HitCost:
    """Worst-case cost of ``hits`` HITs of ``assignments_per_hit`` assignments each, all approved."""
    if hits < 0:
        raise ValueError("The number of HITs cannot be negative.")
    fee = assignment_fee(reward, assignments_per_hit=assignments_per_hit, masters=masters)
    count = hits * assignments_per_hit
    return HitCost(hits=hits, assignments=count, rewards=reward * count, fees=fee * count)


def split_sizes(assignments: int, *, max_per_hit: int = MAX_SMALL_HIT_ASSIGNMENTS) -> list[int]:
    """``assignments`` split as evenly as possible into HITs of at most ``max_per_hit`` each."""
    if assignments < 1:
        raise ValueError("A HIT has at least one assignment.")
    parts = int((Decimal(assignments) / max_per_hit).to_integral_value(ROUND_CEILING))
    base, extra = divmod(assignments, parts)
    return [base + 1] * extra + [base] * (parts - extra)


@dataclass(frozen=True)
class SplitComparison:
    """One item's ``assignments`` as one HIT versus split into HITs of at most 9 assignments."""

    assignments: int
    single: HitCost
    split: HitCost
    split_sizes: tuple[int, ...]

    @property
    def saving(self) -> Decimal:
        return self.single.total - self.split.total


def compare_split(reward: Decimal, *, assignments: int, items: int = 1, masters: bool = False) -> SplitComparison:
    """What ``items`` items of ``assignments`` assignments each cost unsplit and split into HITs of <= 9."""
    if items < 0:
        raise ValueError("The number of items cannot be negative.")
    single = hit_cost(reward, assignments_per_hit=assignments, hits=items, masters=masters)
    sizes = split_sizes(assignments)
    parts = [hit_cost(reward, assignments_per_hit=size, hits=items, masters=masters) for size in sizes]
    split = HitCost(
        hits=sum(p.hits for p in parts),
        assignments=sum(p.assignments for p in parts),
        rewards=sum((p.rewards for p in parts), Decimal(0)),
        fees=sum((p.fees for p in parts), Decimal(0)),
    )
    return SplitComparison(assignments=assignments, single=single, split=split, split_sizes=tuple(sizes))


def additional_assignments_cost(
    reward: Decimal, *, original_max_assignments: int, additional: int, masters: bool = False
) -> HitCost:
    """What ``CreateAdditionalAssignmentsForHIT`` commits. The rate follows the HIT's original size: a HIT
    created with fewer than 10 assignments cannot be extended to 10 or more (MTurk refuses)."""
    fee = assignment_fee(reward, assignments_per_hit=original_max_assignments, masters=masters)
    return HitCost(hits=0, assignments=additional, rewards=_money(reward) * additional, fees=fee * additional)
