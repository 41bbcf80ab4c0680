"""Weighted majority vote, weights from worker skill (gold accuracy when known)."""

from __future__ import annotations

import numpy as np

from tasks.aggregation.base import (
    Answers,
    CategoricalAggregator,
    FitResult,
    FloatArray,
    Gold,
    agreement,
    softmax_rows,
    vote_matrix,
)
from tasks.aggregation.majority_vote import MajorityVote, break_ties


def gold_accuracy(
    answers: Answers, gold: Gold, prior_correct: float = 1.0, prior_wrong: float = 1.0
) -> tuple[FloatArray, FloatArray]:
    """Per worker smoothed accuracy on gold tasks, ``(correct + a) / (n + a + b)``, and ``n``."""
    truth = np.full(answers.n_tasks, -1, dtype=np.int64)
    truth[gold.task] = gold.label
    on_gold = truth[answers.task] >= 0
    correct = np.bincount(
        answers.worker,
        weights=(on_gold & (answers.label == truth[answers.task])).astype(np.float64),
        minlength=answers.n_workers,
    )
    seen = np.bincount(answers.worker, weights=on_gold.astype(np.float64), minlength=answers.n_workers)
    return (correct + prior_correct) / (seen + prior_correct + prior_wrong), seen.astype(np.float64)


class WeightedMajorityVote(CategoricalAggregator):
    """Majority vote where each worker's vote counts ``log((K - 1) * s / (1 - s))``.

    ``s`` is the worker's skill: smoothed accuracy on gold tasks (Beta(1, 1) pseudo-counts) for
    workers who answered at least ``min_gold`` gold tasks, otherwise smoothed agreement with the
    majority vote.  That weight is the optimal one when every worker is right with probability ``s``
    and otherwise picks a wrong label uniformly; it is clipped at zero, so a worker no better than
    chance carries no weight.  ``probas_`` is the softmax of the weighted votes (the posterior under
    that model with a uniform class prior); ties use :class:`MajorityVote`'s tie-break.

    Parameters: ``min_gold`` (default 1), ``max_skill`` (default 0.99, caps a weight).
    """

    def __init__(self, *, min_gold: int = 1, max_skill: float = 0.99) -> None:
        super().__init__()
        self.min_gold = min_gold
        self.max_skill = max_skill

    def _fit(self, answers: Answers, gold: Gold) -> FitResult:
        mv = MajorityVote().fit(answers, None)
        mv_codes = mv.label_codes_.copy()
        if gold.size:
            mv_codes[gold.task] = gold.label
        skill = agreement(answers, mv_codes, 1.0, 1.0)
        if gold.size:
            gold_skill, seen = gold_accuracy(answers, gold)
            skill = np.where(seen >= self.min_gold, gold_skill, skill)
        k = answers.n_classes
        s = np.clip(skill, 1e-6, self.max_skill)
        weight = np.maximum(np.log((k - 1) * s / (1.0 - s)), 0.0)
        votes = vote_matrix(answers, weight[answers.worker])
        post, _ = softmax_rows(votes)
        labels = break_ties(answers, votes, skill)
        return FitResult(post, skill, labels)
