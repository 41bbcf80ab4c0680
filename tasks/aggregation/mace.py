"""MACE: Multi-Annotator Competence Estimation (Hovy et al., NAACL 2013)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tasks.aggregation.base import (
    Answers,
    CategoricalAggregator,
    Convergence,
    FitResult,
    FloatArray,
    Gold,
    Progress,
    normalise_rows,
    posterior_and_loglik,
    vote_matrix,
)
from tasks.aggregation.dawid_skene import class_prior
from tasks.aggregation.incidence import Incidence


class MACE(CategoricalAggregator):
    """Each worker either knows the answer (probability ``theta[w]``) and gives the true label, or
    spams, drawing a label from their own strategy ``xi[w, :]``.  So ``P(answer l | true k) =
    theta * [l == k] + (1 - theta) * xi[l]``; the class prior is uniform, as in the paper.

    Fitted by variational Bayes EM (``variational=True``, the paper's best variant) with a
    Beta(``prior_knowing``, ``prior_spamming``) prior on ``theta`` and a symmetric
    Dirichlet(``prior_strategy``) prior on ``xi``; with ``variational=False`` by MAP EM using those
    numbers as pseudo-counts.  Deterministic: initialised from the majority-vote shares (gold tasks
    clamped) instead of random restarts.  Stops when the log-likelihood of the answers under the
    current (expected) parameters changes by at most ``tol`` per answer, or after ``max_iter``
    iterations.  ``skills_`` is the posterior mean of ``theta``; ``strategy_`` is ``xi``.
    """

    strategy_: FloatArray

    def __init__(
        self,
        *,
        max_iter: int = 100,
        tol: float = 1e-6,
        variational: bool = True,
        prior_knowing: float = 0.5,
        prior_spamming: float = 0.5,
        prior_strategy: float = 1.0,
        learn_class_prior: bool = True,
        n_restarts: int = 0,
        random_state: int = 0,
        progress: Progress | None = None,
    ) -> None:
        super().__init__()
        self.max_iter = max_iter
        self.tol = tol
        self.variational = variational
        self.prior_knowing = prior_knowing
        self.prior_spamming = prior_spamming
        self.prior_strategy = prior_strategy
        self.learn_class_prior = learn_class_prior
        self.n_restarts = n_restarts
        self.random_state = random_state
        self.progress = progress

    def _fit(self, answers: Answers, gold: Gold) -> FitResult:
        inc = Incidence(answers)
        starts = [normalise_rows(vote_matrix(answers))]
        rng = np.random.default_rng(self.random_state)
        starts += [rng.dirichlet(np.ones(answers.n_classes), size=answers.n_tasks) for _ in range(self.n_restarts)]
        best: _Run | None = None
        for start in starts:
            run = self._run(inc, gold.clamp(start), gold, answers.n_answers)
            if best is None or run.objective > best.objective:
                best = run
        assert best is not None
        self.n_iter_ = len(best.history)
        self.objective_history_ = best.history
        self.strategy_ = best.strategy
        return FitResult(best.posterior, best.theta)

    def _run(self, inc: Incidence, post: FloatArray, gold: Gold, n_answers: int) -> _Run:
        from scipy.special import digamma

        k = inc.n_classes
        eye = np.eye(k)
        a, b, s = self.prior_knowing, self.prior_spamming, self.prior_strategy
        # before the first M-step every answer counts as "knowing" in proportion to the posterior
        knows_share = np.ones((inc.n_workers, k))
        conv = Convergence(self.tol, self.max_iter, n_answers, "mace", self.progress)
        log_prior = np.full(k, -np.log(k))
        while True:
            counts = inc.pair_counts(post)  # [w, answered l, true k]
            n_wl = counts.sum(axis=2)  # answers of w with label l
            agree = np.einsum("wll->wl", counts)  # posterior mass on "true == answered"
            knowing_wl = agree * knows_share
            knowing = knowing_wl.sum(axis=1)
            spam_l = n_wl - knowing_wl
            spam = spam_l.sum(axis=1)
            if self.variational:
                total = digamma(knowing + spam + a + b)
                theta = np.exp(digamma(knowing + a) - total)
                not_theta = np.exp(digamma(spam + b) - total)
                xi = np.exp(digamma(spam_l + s) - digamma(spam + k * s)[:, None])
            else:
                theta = (knowing + a) / (knowing + spam + a + b)
                not_theta = 1.0 - theta
                xi = (spam_l + s) / (spam + k * s)[:, None]
            spam_part = not_theta[:, None] * xi  # [w, l]
            conf = spam_part[:, :, None] + theta[:, None, None] * eye[None]
            knows_share = theta[:, None] / (theta[:, None] + spam_part)
            if self.learn_class_prior:
                log_prior = np.log(class_prior(post, 1.0))
            post, loglik = posterior_and_loglik(inc.task_sums(np.log(conf)) + log_prior, gold)
            if conv.update(loglik):
                break
        mean_theta = (knowing + a) / (knowing + spam + a + b)
        return _Run(loglik, post, mean_theta, xi / xi.sum(axis=1, keepdims=True), conv.history)


class _Run(NamedTuple):
    objective: float
    posterior: FloatArray
    theta: FloatArray
    strategy: FloatArray
    history: list[float]
