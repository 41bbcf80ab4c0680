"""MTurk's fee rule, to the cent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from workforce.marketplaces.mturk_fees import additional_assignments_cost, assignment_fee, bonus_fee, hit_cost

D = Decimal


@pytest.mark.parametrize(
    ("reward", "assignments", "masters", "fee"),
    [
        (D("1.00"), 9, False, D("0.20")),
        (D("1.00"), 10, False, D("0.40")),
        (D("1.00"), 3, True, D("0.25")),
        (D("1.00"), 10, True, D("0.45")),
        (D("0.01"), 3, False, D("0.01")),  # 0.002 -> the minimum cent
        (D("0.04"), 3, False, D("0.01")),  # 0.008 rounds to 0.01
        (D("0.05"), 3, False, D("0.01")),
        (D("0.12"), 3, False, D("0.02")),  # 0.024
        (D("0.13"), 3, False, D("0.03")),  # 0.026
        (D("0.125"), 3, False, D("0.03")),  # 0.025 rounds half up
        (D("0.05"), 12, False, D("0.02")),
    ],
)
def test_assignment_fee(reward: Decimal, assignments: int, masters: bool, fee: Decimal) -> None:
    assert assignment_fee(reward, assignments_per_hit=assignments, masters=masters) == fee


def test_a_hit_commits_every_assignment_with_its_fee() -> None:
    cost = hit_cost(D("0.50"), assignments_per_hit=10)
    assert (cost.rewards, cost.fees, cost.total) == (D("5.00"), D("2.00"), D("7.00"))
    assert hit_cost(D("0.01"), assignments_per_hit=3).fees == D("0.03")


def test_bonuses_pay_twenty_percent_with_a_minimum_cent() -> None:
    assert bonus_fee(D("1.00")) == D("0.20")
    assert bonus_fee(D("0.02")) == D("0.01")
    assert bonus_fee(D("0.33")) == D("0.07")


def test_extra_assignments_keep_the_original_rate() -> None:
    cost = additional_assignments_cost(D("1.00"), original_max_assignments=3, additional=2)
    assert (cost.rewards, cost.fees) == (D("2.00"), D("0.40"))


def test_float_and_negative_amounts_are_refused() -> None:
    with pytest.raises(TypeError):
        assignment_fee(0.5, assignments_per_hit=1)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        bonus_fee(D("-1"))
