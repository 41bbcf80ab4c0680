"""Worker scoring: pure functions over counts (numpy/scipy), no Django.

Gold accuracy uses a Beta prior so a worker with 1 right answer out of 1 is not "100%": the posterior
is Beta(prior_right + right, prior_wrong + wrong), summarised by its mean and a central credible interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import betaincinv

FloatArray = npt.NDArray[np.float64]

# A weak prior centred a little above chance for typical label sets.
PRIOR_RIGHT = 2.0
PRIOR_WRONG = 1.0


@dataclass(frozen=True)
class Accuracy:
    mean: float
    low: float
    high: float
    n: int


def gold_accuracy(
    right: float, n: int, *, level: float = 0.9, prior_right: float = PRIOR_RIGHT, prior_wrong: float = PRIOR_WRONG
) -> Accuracy:
    """Posterior mean and ``level`` central credible interval of one worker's gold accuracy."""
    mean, low, high = gold_accuracy_many(
        np.array([right], dtype=float),
        np.array([n], dtype=float),
        level=level,
        prior_right=prior_right,
        prior_wrong=prior_wrong,
    )
    return Accuracy(float(mean[0]), float(low[0]), float(high[0]), int(n))


def gold_accuracy_many(
    right: FloatArray,
    n: FloatArray,
    *,
    level: float = 0.9,
    prior_right: float = PRIOR_RIGHT,
    prior_wrong: float = PRIOR_WRONG,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Vectorised ``gold_accuracy`` for many workers: (mean, low, high) arrays."""
    if np.any(right < 0) or np.any(right > n):
        raise ValueError("right answers must be between 0 and the number of gold answers")
    a = prior_right + right
    b = prior_wrong + (n - right)
    tail = (1.0 - level) / 2.0
    return a / (a + b), betaincinv(a, b, tail), betaincinv(a, b, 1.0 - tail)


def should_block(accuracy: Accuracy, *, threshold: float | None, min_gold: int) -> bool:
    """Block once we are confident (the interval's upper end) the worker is below ``threshold``.

    Acting on the upper end, not the mean, keeps honest but noisy workers: a few unlucky misses
    cannot push the whole interval under the threshold, while a spammer's does within a few answers.
    """
    if threshold is None or accuracy.n < min_gold:
        return False
    return accuracy.high < threshold


def agreement(matches: FloatArray, counts: FloatArray) -> FloatArray:
    """Share of each worker's answers that equal the consensus label (NaN for no answers)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, matches / np.maximum(counts, 1), np.nan)


def too_fast(seconds_per_item: FloatArray, job_median: float, *, factor: float = 0.2) -> npt.NDArray[np.bool_]:
    """Flag answers given in less than ``factor`` of the job's median time per item."""
    return seconds_per_item < factor * job_median
