"""Dawid-Skene: one full confusion matrix per worker, fitted by (MAP) EM."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
from tasks.aggregation.incidence import Incidence

if TYPE_CHECKING:
    import pandas as pd


def class_prior(posterior: FloatArray, pseudo: float) -> FloatArray:
    """Class prior from the posterior with ``pseudo`` extra counts per class."""
    counts = posterior.sum(axis=0) + pseudo
    return np.asarray(counts / counts.sum(), dtype=np.float64)


class DawidSkene(CategoricalAggregator):
    """Dawid & Skene (1979): worker ``w`` answers ``l`` for a task of true class ``k`` with probability
    ``pi[w, k, l]``; true classes follow a class prior.  Fitted by EM:

    - initialised from the majority-vote shares (gold tasks clamped to their label);
    - M-step: ``pi[w, k, :]`` is proportional to the expected counts plus a Dirichlet prior's
      pseudo-counts (``prior_correct`` on the diagonal, ``prior_wrong`` elsewhere), so a worker with
      few answers gets a smoothed matrix rather than zeros and ones; the class prior gets
      ``prior_class`` pseudo-counts per class;
    - E-step: task posteriors; gold tasks stay clamped to their known label (this anchors the
      worker matrices);
    - stop when the MAP objective (log-likelihood of the answers plus the log Dirichlet densities),
      which EM never decreases, changes by at most ``tol`` per answer, or after ``max_iter`` steps.

    Results: ``posterior_``/``probas_``; ``confusion_`` ``(n_workers, K, K)`` indexed
    ``[worker, true, answered]``; ``skills_`` the same as a DataFrame (index worker and true label,
    columns answered label); ``worker_skill_`` each worker's accuracy under the class prior;
    ``class_prior_``; ``n_iter_`` and ``objective_history_``.
    """

    confusion_: FloatArray
    class_prior_: FloatArray

    def __init__(
        self,
        *,
        max_iter: int = 100,
        tol: float = 1e-6,
        prior_correct: float = 4.0,
        prior_wrong: float = 0.1,
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

    def _pseudo(self, k: int) -> FloatArray:
        pseudo = np.full((k, k), self.prior_wrong, dtype=np.float64)
        np.fill_diagonal(pseudo, self.prior_correct)
        return pseudo  # indexed [answered, true]

    def _fit(self, answers: Answers, gold: Gold) -> FitResult:
        k = answers.n_classes
        inc = Incidence(answers)
        pseudo = self._pseudo(k)
        post = gold.clamp(normalise_rows(vote_matrix(answers)))
        conv = Convergence(self.tol, self.max_iter, answers.n_answers, "ds", self.progress)
        while True:
            # M-step: conf[w, l, k] = P(answer l | true k), normalised over the answered label l
            counts = inc.pair_counts(post) + pseudo
            conf = counts / counts.sum(axis=1, keepdims=True)
            prior = class_prior(post, self.prior_class)
            log_conf = np.log(conf)
            log_prior = np.log(prior)
            # E-step
            post, loglik = posterior_and_loglik(inc.task_sums(log_conf) + log_prior, gold)
            objective = loglik + float((pseudo * log_conf).sum()) + self.prior_class * float(log_prior.sum())
            if conv.update(objective):
                break
        self.n_iter_ = len(conv.history)
        self.objective_history_ = conv.history
        self.confusion_ = np.ascontiguousarray(conf.transpose(0, 2, 1))
        self.class_prior_ = prior
        skill = np.einsum("wkk,k->w", self.confusion_, prior)
        return FitResult(post, skill)

    @property
    def skills_(self) -> Any:
        """Confusion matrices: index (worker, true label), columns answered label, rows sum to one."""
        import pandas as pd

        a = self.answers_
        k = a.n_classes
        index = pd.MultiIndex.from_arrays(
            [np.repeat(a.worker_names, k), np.tile(a.classes, a.n_workers)], names=["worker", "true"]
        )
        frame: pd.DataFrame = pd.DataFrame(
            self.confusion_.reshape(a.n_workers * k, k),
            index=index,
            columns=pd.Index(a.classes, name="answered"),
        )
        return frame
