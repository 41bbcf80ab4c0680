"""MTurk's fee schedule as exact Decimal arithmetic."""

from __future__ import annotations

from decimal import Decimal

import pytest

from workforce.marketplaces import mturk_fees as fees

D = Decimal


@pytest.mark.parametrize(
    ("reward", "per_hit", "masters", "fee"),
    [
        (D("0.05"), 3, False, D("0.01")),  # 20% of 5 cents is 1 cent
        (D("0.02"), 3, False, D("0.01")),  # 0.4 cents: the one-cent minimum
        (D("1.00"), 9, False, D("0.20")),
        (D("1.00"), 10, False, D("0.40")),  # 10+ assignments: 20% more
        (D("1.00"), 3, True, D("0.25")),  # Masters: 5% more
        (D("1.00"), 12, True, D("0.45")),
        (D("0.125"), 3, False, D("0.03")),  # 2.5 cents rounds half up
        (D("0"), 1, False, D("0.01")),
    ],
)
def test_the_assignment_fee_follows_the_schedule(reward, per_hit, masters, fee):
    assert fees.assignment_fee(reward, assignments_per_hit=per_hit, masters=masters) == fee


def test_a_bonus_pays_twenty_percent_with_a_one_cent_minimum():
    assert fees.bonus_fee(D("2.00")) == D("0.40")
    assert fees.bonus_fee(D("0.03")) == D("0.01")


def test_splitting_ten_or_more_assignments_into_hits_of_nine_saves_the_extra_fee():
    comparison = fees.compare_split(D("0.50"), assignments=20, items=100)
    assert comparison.split_sizes == (7, 7, 6)
    assert comparison.single.fees == D("0.20") * 2000  # 40% of 0.50 on 2000 assignments
    assert comparison.split.fees == D("0.10") * 2000
    assert comparison.single.rewards == comparison.split.rewards == D("1000.00")
    assert comparison.saving == D("200.00")
    assert comparison.split.hits == 300


def test_split_sizes_never_exceed_nine_and_add_up():
    for n in range(1, 60):
        sizes = fees.split_sizes(n)
        assert sum(sizes) == n and max(sizes) <= 9 and max(sizes) - min(sizes) <= 1


def test_bad_amounts_are_refused():
    with pytest.raises(ValueError):
        fees.assignment_fee(D("-1"), assignments_per_hit=1)
    with pytest.raises(ValueError):
        fees.bonus_fee(0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        fees.fee_rate(assignments_per_hit=0)
