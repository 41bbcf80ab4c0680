"""The numpy hash factoriser behind the fast CSV reader."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.aggregation.hashing import factorise_ints, first_appearance_order


def assert_same_partition(values: np.ndarray, codes: np.ndarray, n_codes: int) -> None:
    uniques, inverse = np.unique(values, return_inverse=True)
    assert n_codes == uniques.size
    assert codes.min(initial=0) >= 0 and codes.max(initial=-1) < n_codes
    # equal values get equal codes and different values different codes
    mapping = np.full(n_codes, -1)
    mapping[codes] = inverse.reshape(-1)
    assert (mapping[codes] == inverse.reshape(-1)).all()
    assert np.unique(mapping).size == n_codes


@pytest.mark.parametrize(
    "values",
    [
        np.random.default_rng(0).integers(0, 2**63, 50_000, dtype=np.int64),  # mostly distinct
        np.random.default_rng(1).integers(0, 7, 50_000, dtype=np.int64),  # few distinct values
        np.arange(200_000, dtype=np.int64) << 32,  # structured keys: many slot collisions
        np.array([5], dtype=np.int64),
        np.zeros(0, dtype=np.int64),
    ],
)
def test_equal_values_get_equal_codes_and_different_values_different_ones(values: np.ndarray) -> None:
    codes, n_codes = factorise_ints(values)
    assert_same_partition(values, codes, n_codes)


def test_values_left_after_the_last_round_are_finished_by_sorting() -> None:
    values = np.random.default_rng(2).integers(0, 2**40, 300_000, dtype=np.int64)
    codes, n_codes = factorise_ints(values, max_rounds=1)  # one round leaves collisions behind
    assert_same_partition(values, codes, n_codes)


def test_unsigned_values_with_the_top_bit_set_are_distinct() -> None:
    values = np.array([2**64 - 1, 1, 2**63, 2**64 - 1], dtype=np.uint64)
    codes, n_codes = factorise_ints(values)
    assert n_codes == 3
    assert codes[0] == codes[3] and len({codes[0], codes[1], codes[2]}) == 3


def test_codes_are_renumbered_by_first_appearance() -> None:
    codes, first = first_appearance_order(np.array([2, 0, 2, 1, 0, 3]), 4)
    assert codes.tolist() == [0, 1, 0, 2, 1, 3]
    assert first.tolist() == [0, 1, 3, 5]
