"""Wawa: majority vote weighted by each worker's agreement with the majority."""

from __future__ import annotations

from tasks.aggregation.base import (
    Answers,
    CategoricalAggregator,
    FitResult,
    Gold,
    agreement,
    normalise_rows,
    vote_matrix,
)
from tasks.aggregation.majority_vote import MajorityVote, break_ties


class Wawa(CategoricalAggregator):
    """Worker Agreement With Aggregate.

    1. Majority vote (with :class:`MajorityVote`'s tie-break).
    2. Each worker's skill is the share of their answers that agree with that majority.
    3. Votes are summed with these skills as weights; ``probas_`` are the weighted shares.

    Ties in the weighted vote use the same tie-break as majority vote.  With gold, gold tasks count
    as their known label in step 2 and are clamped in the result.
    """

    def _fit(self, answers: Answers, gold: Gold) -> FitResult:
        mv = MajorityVote().fit(answers)
        codes = mv.label_codes_
        if gold.size:
            codes = codes.copy()
            codes[gold.task] = gold.label
        skill = agreement(answers, codes)
        weighted = vote_matrix(answers, skill[answers.worker])
        labels = break_ties(answers, weighted, skill)
        return FitResult(normalise_rows(weighted), skill, labels)
