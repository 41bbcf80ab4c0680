"""One-coin Dawid-Skene: one accuracy per worker, errors spread evenly over the other classes."""

from __future__ import annotations

import numpy as np

from tasks.aggregation.base import (
    Answers,
    CategoricalAggregator,
    Convergence,
    FitResult,
    Gold,
    Progress,
    normalise_rows,
    posterior_and_loglik,
    vote_matrix,
)
from tasks.aggregation.dawid_skene import class_prior
from tasks.aggregation.incidence import Incidence


class OneCoinDawidSkene(CategoricalAggregator):
    """Worker ``w`` answers the true class with probability ``p[w]`` and each other class with
    ``(1 - p[w]) / (K - 1)``.  EM as in :class:`DawidSkene` (majority-vote start, gold clamped,
    same stopping rule); ``p`` gets Beta pseudo-counts ``prior_correct`` / ``prior_wrong`` and the
    class prior ``prior_class`` per class.  ``skills_`` is ``p``.
    """

    def __init__(
        self,
        *,
        max_iter: int = 100,
        tol: float = 1e-6,
        prior_correct: float = 2.0,
        prior_wrong: float = 1.0,
        prior_class: float = 1.0,
        progress: Progress | None = None,
    ) -> None:
        super().__init__()
        self.max_iter = max_iter
        self.tol = tol
        self.prior_correct = prior_correct
        self.prior_wrong = prior_wrong
        self.prior_class = prior_class
        self.progress = progress

    def _fit(self, answers: Answers, gold: Gold) -> FitResult:
        k = answers.n_classes
        inc = Incidence(answers)
        eye = np.eye(k, dtype=bool)
        post = gold.clamp(normalise_rows(vote_matrix(answers)))
        n = np.bincount(answers.worker, minlength=answers.n_workers).astype(np.float64)
        conv = Convergence(self.tol, self.max_iter, answers.n_answers, "ods", self.progress)
        while True:
            correct = np.einsum("wkk->w", inc.pair_counts(post))
            p = (correct + self.prior_correct) / (n + self.prior_correct + self.prior_wrong)
            prior = class_prior(post, self.prior_class)
            log_right = np.log(p)
            log_wrong = np.log((1.0 - p) / (k - 1))
            log_conf = np.where(eye[None], log_right[:, None, None], log_wrong[:, None, None])
            log_prior = np.log(prior)
            post, loglik = posterior_and_loglik(inc.task_sums(log_conf) + log_prior, gold)
            objective = (
                loglik
                + self.prior_correct * float(log_right.sum())
                + self.prior_wrong * float(np.log1p(-p).sum())
                + self.prior_class * float(log_prior.sum())
            )
            if conv.update(objective):
                break
        self.n_iter_ = len(conv.history)
        self.objective_history_ = conv.history
        return FitResult(post, p)
