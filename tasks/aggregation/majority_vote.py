"""Majority vote with a deterministic, documented tie-break."""

from __future__ import annotations

import numpy as np

from tasks.aggregation.base import (
    Answers,
    CategoricalAggregator,
    FitResult,
    FloatArray,
    Gold,
    IntArray,
    agreement,
    argmax_with_ties,
    normalise_rows,
    vote_matrix,
)


def worker_tie_skill(answers: Answers, votes: FloatArray) -> FloatArray:
    """Worker skill used to break ties: smoothed agreement (Beta(1, 1) pseudo-counts) with the plain
    majority, counted only on tasks where that majority is not tied."""
    top = votes.max(axis=1, keepdims=True)
    untied = (votes == top).sum(axis=1) == 1
    winner = np.where(untied, np.argmax(votes, axis=1), -1).astype(np.int64)
    hit = answers.label == winner[answers.task]
    counted = untied[answers.task]
    correct = np.bincount(answers.worker, weights=hit.astype(np.float64), minlength=answers.n_workers)
    total = np.bincount(answers.worker, weights=counted.astype(np.float64), minlength=answers.n_workers)
    return (correct + 1.0) / (total + 2.0)


def break_ties(answers: Answers, scores: FloatArray, skill: FloatArray) -> IntArray:
    """Argmax of ``scores`` per task; ties go to the class chosen by the workers with the larger summed
    skill, then to the more frequent class overall (the class prior), then to the first class."""
    prior = np.bincount(answers.label, minlength=answers.n_classes).astype(np.float64)
    skill_sums = vote_matrix(answers, skill[answers.worker])
    return argmax_with_ties(scores, skill_sums, prior)


class MajorityVote(CategoricalAggregator):
    """Majority vote: each task gets the label most workers chose.

    ``probas_`` are vote shares, so the confidence of a label is the share of workers who chose it.
    Ties in the vote count are broken, in order, by (1) the summed skill of the workers who chose each
    tied label (skill: smoothed agreement with the untied majority, see :func:`worker_tie_skill`),
    (2) the class prior (how often each label was answered overall), (3) label order.  ``skills_`` is
    each worker's agreement with the resulting labels.
    """

    def _fit(self, answers: Answers, gold: Gold) -> FitResult:
        votes = vote_matrix(answers)
        tie_skill = worker_tie_skill(answers, votes)
        codes = break_ties(answers, votes, tie_skill)
        if gold.size:
            codes[gold.task] = gold.label
        skill = agreement(answers, codes)
        return FitResult(normalise_rows(votes), skill, codes)
