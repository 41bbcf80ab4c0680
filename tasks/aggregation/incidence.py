"""Sparse one-hot incidence of answers, the engine room of the confusion-matrix models.

Every model whose worker behaviour is a matrix ``P(answered l | true k)`` per worker (Dawid-Skene,
one-coin Dawid-Skene, MACE) needs two products per EM iteration:

- E-step: for every task, the sum over its answers of ``log P(answered | true k)``;
- M-step: for every (worker, answered label) pair, the sum over its answers of the task posterior.

With ``M`` the ``n_tasks x (n_workers * n_classes)`` 0/1 matrix with a one at
``(task, worker * n_classes + label)`` for every answer, these are ``M @ log_conf`` and
``M.T @ posterior``: two sparse-dense products, linear in the number of answers, with no Python
loop over answers, tasks or workers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tasks.aggregation.base import Answers, FloatArray


class Incidence:
    """``M`` and ``M.T`` for an :class:`Answers` (both kept in CSR form for fast products)."""

    def __init__(self, answers: Answers) -> None:
        import scipy.sparse as sp

        self.n_tasks = answers.n_tasks
        self.n_workers = answers.n_workers
        self.n_classes = answers.n_classes
        pairs = self.n_workers * self.n_classes
        column = answers.worker * self.n_classes + answers.label
        ones = np.ones(answers.n_answers, dtype=np.float64)
        index_dtype = np.int32 if max(answers.n_answers, pairs, self.n_tasks) < 2**31 - 1 else np.int64
        by_task: Any = sp.csr_matrix(
            (ones, (answers.task.astype(index_dtype), column.astype(index_dtype))),
            shape=(self.n_tasks, pairs),
        )
        self.by_task = by_task
        self.by_pair: Any = by_task.T.tocsr()

    def answers_per_worker(self) -> FloatArray:
        """``(n_workers,)`` number of answers of every worker."""
        per_pair = np.diff(self.by_pair.indptr).astype(np.float64)
        return np.asarray(per_pair.reshape(self.n_workers, self.n_classes).sum(axis=1))

    def task_sums(self, per_pair: FloatArray) -> FloatArray:
        """``(n_tasks, n_classes)``: for every task, the sum of ``per_pair[worker, label, :]`` over its
        answers.  ``per_pair`` has shape ``(n_workers, n_classes, n_classes)`` indexed
        ``[worker, answered label, true class]``."""
        flat = np.ascontiguousarray(per_pair.reshape(self.n_workers * self.n_classes, self.n_classes))
        return np.asarray(self.by_task @ flat)

    def pair_counts(self, posterior: FloatArray) -> FloatArray:
        """``(n_workers, n_classes, n_classes)`` expected counts ``[worker, answered l, true k]``: the
        sum of the posterior of class ``k`` over the tasks where the worker answered ``l``."""
        out = np.asarray(self.by_pair @ posterior)
        return out.reshape(self.n_workers, self.n_classes, self.n_classes)
