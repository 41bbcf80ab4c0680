"""Numeric answers: per-task median and trimmed mean (vectorised with one sort)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

import numpy as np

from tasks.aggregation.base import FloatArray, IntArray, ObjArray

if TYPE_CHECKING:
    import pandas as pd


class _NumericAggregator:
    """Base: ``fit(data)`` with columns ``task, worker, label`` where ``label`` is a number.

    Results: ``labels_`` (consensus value per task); ``probas_`` the share of the task's answers
    within ``tolerance`` of that value, which is its confidence; ``skills_`` each worker's share of
    answers within ``tolerance`` of the consensus.  ``tolerance`` defaults to 5% of the spread
    between the 5th and 95th percentiles of all answers (0 when they are all equal).
    """

    values_: FloatArray
    confidence_: FloatArray
    worker_skill_: FloatArray
    task_names_: ObjArray
    worker_names_: ObjArray

    def __init__(self, *, tolerance: float | None = None) -> None:
        self.tolerance = tolerance

    def _consensus(self, value: FloatArray, start: IntArray, count: IntArray, owner: IntArray) -> FloatArray:
        raise NotImplementedError

    def fit(self, data: pd.DataFrame) -> Self:
        import pandas as pd

        t_codes, t_names = pd.factorize(data["task"].astype(str))
        w_codes, w_names = pd.factorize(data["worker"].astype(str))
        value = pd.to_numeric(data["label"], errors="coerce").to_numpy(dtype=np.float64)
        if np.isnan(value).any():
            raise ValueError(f"non-numeric answer at row {int(np.argmax(np.isnan(value)))}")
        t = np.asarray(t_codes, dtype=np.int64)
        w = np.asarray(w_codes, dtype=np.int64)
        n_t = len(t_names)
        order = np.lexsort((value, t))
        sorted_t, sorted_v = t[order], value[order]
        count = np.bincount(t, minlength=n_t)
        start = np.concatenate(([0], np.cumsum(count)[:-1]))
        consensus = self._consensus(sorted_v, start, count, sorted_t)
        tol = self.tolerance
        if tol is None:
            lo, hi = np.percentile(value, [5, 95]) if value.size else (0.0, 0.0)
            tol = 0.05 * float(hi - lo)
        close = (np.abs(value - consensus[t]) <= tol + 1e-12).astype(np.float64)
        self.values_ = consensus
        self.confidence_ = np.bincount(t, weights=close, minlength=n_t) / np.maximum(count, 1)
        self.worker_skill_ = np.bincount(w, weights=close, minlength=len(w_names)) / np.maximum(
            np.bincount(w, minlength=len(w_names)), 1
        )
        self.task_names_ = np.asarray(t_names, dtype=object)
        self.worker_names_ = np.asarray(w_names, dtype=object)
        return self

    @property
    def labels_(self) -> pd.Series[Any]:
        import pandas as pd

        return pd.Series(self.values_, index=pd.Index(self.task_names_, name="task"), name="label")

    @property
    def probas_(self) -> pd.Series[Any]:
        import pandas as pd

        return pd.Series(self.confidence_, index=pd.Index(self.task_names_, name="task"), name="confidence")

    @property
    def skills_(self) -> pd.Series[Any]:
        import pandas as pd

        return pd.Series(self.worker_skill_, index=pd.Index(self.worker_names_, name="worker"), name="skill")

    def result_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame({"task": self.task_names_, "label": self.values_, "confidence": self.confidence_})


class Median(_NumericAggregator):
    """Per-task median (mean of the two middle answers for an even count)."""

    def _consensus(self, value: FloatArray, start: IntArray, count: IntArray, owner: IntArray) -> FloatArray:
        lo = start + (count - 1) // 2
        hi = start + count // 2
        return np.asarray((value[lo] + value[hi]) / 2.0, dtype=np.float64)


class TrimmedMean(_NumericAggregator):
    """Per-task mean after dropping ``floor(proportion * n)`` answers at each end (``proportion`` in
    [0, 0.5)); with fewer answers than that allows, it is the plain mean."""

    def __init__(self, *, proportion: float = 0.1, tolerance: float | None = None) -> None:
        super().__init__(tolerance=tolerance)
        if not 0.0 <= proportion < 0.5:
            raise ValueError("proportion must be in [0, 0.5)")
        self.proportion = proportion

    def _consensus(self, value: FloatArray, start: IntArray, count: IntArray, owner: IntArray) -> FloatArray:
        cut = np.floor(self.proportion * count).astype(np.int64)
        rank = np.arange(value.size) - start[owner]
        keep = (rank >= cut[owner]) & (rank < (count - cut)[owner])
        kept = np.bincount(owner, weights=keep.astype(np.float64), minlength=count.size)
        total = np.bincount(owner, weights=np.where(keep, value, 0.0), minlength=count.size)
        return np.asarray(total / np.maximum(kept, 1.0), dtype=np.float64)
