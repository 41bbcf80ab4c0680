"""Amazon Mechanical Turk's requester fees, exactly, in ``Decimal``.

The rule (MTurk pricing page): a 20% commission on every reward and every bonus; HITs with 10 or more
assignments pay a further 20% on their rewards; the Masters qualification adds 5% of the reward; and the
commission is at least $0.01 per assignment and per bonus. Fees are counted per assignment (or per bonus)
and rounded to the cent, half up, before the minimum applies, so a HIT's fee is its assignments' fees added.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")
BASE_RATE = Decimal("0.20")
LARGE_HIT_RATE = Decimal("0.20")
LARGE_HIT_ASSIGNMENTS = 10
MASTERS_RATE = Decimal("0.05")
MINIMUM_FEE = Decimal("0.01")


def _money(value: Decimal) -> Decimal:
    if not isinstance(value, Decimal):
        raise TypeError("MTurk fees are computed on Decimal amounts only.")
    if value < 0:
        raise ValueError("A reward or bonus cannot be negative.")
    return value


def commission_rate(*, max_assignments: int, masters: bool = False) -> Decimal:
    """The share of each assignment's reward MTurk charges on top of it."""
    rate = BASE_RATE
    if max_assignments >= LARGE_HIT_ASSIGNMENTS:
        rate += LARGE_HIT_RATE
    if masters:
        rate += MASTERS_RATE
    return rate


def assignment_fee(reward: Decimal, *, max_assignments: int, masters: bool = False) -> Decimal:
    """MTurk's fee on one assignment of a HIT published with ``max_assignments`` assignments."""
    rate = commission_rate(max_assignments=max_assignments, masters=masters)
    fee = (_money(reward) * rate).quantize(CENT, rounding=ROUND_HALF_UP)
    return max(fee, MINIMUM_FEE)


def bonus_fee(amount: Decimal) -> Decimal:
    """MTurk's fee on one bonus (20%, at least a cent; never the large-HIT or Masters surcharge)."""
    fee = (_money(amount) * BASE_RATE).quantize(CENT, rounding=ROUND_HALF_UP)
    return max(fee, MINIMUM_FEE)


@dataclass(frozen=True)
class HitCost:
    rewards: Decimal
    fees: Decimal

    @property
    def total(self) -> Decimal:
        return self.rewards + self.fees


def hit_cost(reward: Decimal, *, max_assignments: int, masters: bool = False) -> HitCost:
    """What publishing one HIT commits: every assignment's reward plus every assignment's fee."""
    if max_assignments < 1:
        raise ValueError("A HIT has at least one assignment.")
    per_fee = assignment_fee(reward, max_assignments=max_assignments, masters=masters)
    return HitCost(rewards=_money(reward) * max_assignments, fees=per_fee * max_assignments)


def additional_assignments_cost(
    reward: Decimal, *, original_max_assignments: int, additional: int, masters: bool = False
) -> HitCost:
    """What ``CreateAdditionalAssignmentsForHIT`` commits. The rate follows the HIT's original size: a HIT
    created with fewer than 10 assignments cannot be extended to 10 or more (MTurk refuses)."""
    per_fee = assignment_fee(reward, max_assignments=original_max_assignments, masters=masters)
    return HitCost(rewards=_money(reward) * additional, fees=per_fee * additional)
