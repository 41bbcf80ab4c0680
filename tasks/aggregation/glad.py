"""GLAD: Generative model of Labels, Abilities, and Difficulties (Whitehill et al., NIPS 2009)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tasks.aggregation.base import (
    Answers,
    CategoricalAggregator,
    Convergence,
    FitResult,
    FloatArray,
    Gold,
    IntArray,
    Progress,
    normalise_rows,
    posterior_and_loglik,
    vote_matrix,
)


class GLAD(CategoricalAggregator):
    """Worker ``w`` answers task ``t`` correctly with probability ``sigmoid(alpha[w] * beta[t])``
    (``alpha``: ability, any sign; ``beta = exp(log_beta) > 0``: inverse difficulty), otherwise picks
    one of the other ``K - 1`` labels uniformly.

    EM: start from the majority-vote shares (gold clamped); the M-step maximises the expected
    complete log-likelihood plus Gaussian priors ``alpha ~ N(prior_alpha, 1)`` and
    ``log_beta ~ N(prior_log_beta, 1)`` with a few L-BFGS steps (``m_step_max_iter``; exact gradients
    computed with ``np.bincount``); the E-step computes task posteriors (gold clamped).  The class
    prior is uniform unless ``learn_class_prior``.  Stops when the MAP objective changes by at most
    ``tol`` per answer or after ``max_iter`` iterations.

    Results: ``skills_`` each worker's ``sigmoid(alpha)`` (their accuracy on a task with
    ``beta = 1``); ``alphas_`` and ``betas_`` arrays.
    """

    alphas_: FloatArray
    betas_: FloatArray

    def __init__(
        self,
        *,
        max_iter: int = 100,
        tol: float = 1e-5,
        m_step_max_iter: int = 3,
        prior_alpha: float = 1.0,
        prior_log_beta: float = 1.0,
        alpha_precision: float = 30.0,
        beta_precision: float = 1.0,
        learn_class_prior: bool = False,
        init_e_step: bool = True,
        max_step: float = 2.0,
        backtracks: int = 4,
        progress: Progress | None = None,
    ) -> None:
        super().__init__()
        self.max_iter = max_iter
        self.tol = tol
        self.m_step_max_iter = m_step_max_iter
        self.prior_alpha = prior_alpha
        self.prior_log_beta = prior_log_beta
        self.learn_class_prior = learn_class_prior
        self.init_e_step = init_e_step
        self.alpha_precision = alpha_precision
        self.beta_precision = beta_precision
        self.max_step = max_step
        self.backtracks = backtracks
        self.progress = progress

    def _fit(self, answers: Answers, gold: Gold) -> FitResult:
        t, w, y = answers.task, answers.worker, answers.label
        n_t, n_w, k = answers.n_tasks, answers.n_workers, answers.n_classes
        log_k1 = float(np.log(k - 1))
        ty = t * k + y
        mu_a, mu_b, lam = self.prior_alpha, self.prior_log_beta, self.alpha_precision
        alpha = np.full(n_w, mu_a)
        log_beta = np.full(n_t, mu_b)
        log_prior = np.full(k, -np.log(k))
        post = gold.clamp(normalise_rows(vote_matrix(answers)))
        conv = Convergence(self.tol, self.max_iter, answers.n_answers, "glad", self.progress)
        first = True
        while True:
            if not first or not self.init_e_step:
                q = post.reshape(-1)[ty]  # posterior of the answered label
                for _ in range(self.m_step_max_iter):
                    alpha, log_beta = self._newton_round(alpha, log_beta, q, t, w, n_t, n_w)
            first = False
            if self.learn_class_prior:
                counts = post.sum(axis=0) + 1.0
                log_prior = np.log(counts / counts.sum())
            z = alpha[w] * np.exp(log_beta)[t]
            right, wrong = -np.logaddexp(0.0, -z), -np.logaddexp(0.0, z) - log_k1
            joint = np.bincount(t, weights=wrong, minlength=n_t)[:, None] + log_prior
            joint += np.bincount(ty, weights=right - wrong, minlength=n_t * k).reshape(n_t, k)
            post, loglik = posterior_and_loglik(joint, gold)
            penalty = 0.5 * (
                lam * float(np.square(alpha - mu_a).sum())
                + self.beta_precision * float(np.square(log_beta - mu_b).sum())
            )
            if conv.update(loglik - penalty):
                break
        self.n_iter_ = len(conv.history)
        self.objective_history_ = conv.history
        self.alphas_, self.betas_ = alpha, np.exp(log_beta)
        skill = 1.0 / (1.0 + np.exp(-alpha))
        return FitResult(post, skill)

    def _newton_round(
        self, alpha: FloatArray, log_beta: FloatArray, q: FloatArray, t: IntArray, w: IntArray, n_t: int, n_w: int
    ) -> tuple[FloatArray, FloatArray]:
        """One Fisher-scoring step on every ``alpha`` (tasks fixed), then on every ``log_beta``.

        The expected complete log-likelihood ``Q`` separates over workers given the tasks and over
        tasks given the workers, so each block step is a vector of independent one-dimensional
        steps: ``dQ/dz = q - sigmoid(z)`` and the Fisher information ``sigmoid * (1 - sigmoid)``
        need two ``np.bincount`` calls.  A step that does not increase its own term of ``Q`` is
        halved (up to ``backtracks`` times) and then dropped, so ``Q`` never decreases.
        """
        beta_t = np.exp(log_beta)[t]
        alpha = self._block_step(
            alpha, w, n_w, q, self.prior_alpha, self.alpha_precision, lambda p: p[w] * beta_t, lambda z, p: beta_t
        )
        a_w = alpha[w]
        log_beta = self._block_step(
            log_beta, t, n_t, q, self.prior_log_beta, self.beta_precision, lambda p: a_w * np.exp(p)[t], lambda z, p: z
        )
        return alpha, log_beta

    def _block_step(
        self,
        p: FloatArray,
        owner: IntArray,
        n: int,
        q: FloatArray,
        mu: float,
        lam: float,
        z_of: Callable[[FloatArray], FloatArray],
        dz_of: Callable[[FloatArray, FloatArray], FloatArray],
    ) -> FloatArray:
        def block_q(z: FloatArray, params: FloatArray) -> FloatArray:
            terms = -q * np.logaddexp(0.0, -z) - (1.0 - q) * np.logaddexp(0.0, z)
            return np.bincount(owner, weights=terms, minlength=n) - 0.5 * lam * np.square(params - mu)

        z = z_of(p)
        dz = dz_of(z, p)
        sig = 1.0 / (1.0 + np.exp(-z))
        grad = np.bincount(owner, weights=(q - sig) * dz, minlength=n) - lam * (p - mu)
        info = np.bincount(owner, weights=sig * (1.0 - sig) * dz * dz, minlength=n) + lam
        step = np.clip(grad / info, -self.max_step, self.max_step)
        before = block_q(z, p)
        new = p + step
        for _ in range(self.backtracks):
            worse = block_q(z_of(new), new) < before
            if not worse.any():
                return np.asarray(new, dtype=np.float64)
            step = np.where(worse, step / 2.0, step)
            new = p + step
        worse = block_q(z_of(new), new) < before
        return np.where(worse, p, new)
