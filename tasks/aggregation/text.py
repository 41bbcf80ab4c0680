"""Free-text answers: majority vote over normalised text (exact match after normalisation)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from tasks.aggregation.base import FloatArray, IntArray, ObjArray

if TYPE_CHECKING:
    import pandas as pd

_SPACE = re.compile(r"\s+")
_EDGE_PUNCT = ".,;:!?\"'`()[]{}"


def normalise_text(value: str) -> str:
    """Unicode NFKC, case-folded, runs of whitespace collapsed, surrounding space and punctuation
    stripped: ``"  New   York. "`` and ``"new york"`` are the same answer."""
    text = unicodedata.normalize("NFKC", value).casefold()
    return _SPACE.sub(" ", text).strip().strip(_EDGE_PUNCT).strip()


class TextVote:
    """Majority vote on normalised text.

    Each answer is normalised (``normalise_text`` or the given ``normaliser``; each distinct string
    once); a task's winner is the most common normalised form; ties go to the form given most often
    over all tasks, then to the one seen first.  The label written out is the most common original
    spelling of the winner within the task.  ``probas_`` (a Series indexed by task and normalised
    form) holds vote shares; ``skills_`` each worker's share of answers that match the winner.
    """

    task_names_: ObjArray
    worker_names_: ObjArray
    label_text_: ObjArray
    confidence_: FloatArray
    worker_skill_: FloatArray

    def __init__(self, *, normaliser: Callable[[str], str] = normalise_text) -> None:
        self.normaliser = normaliser

    def fit(self, data: pd.DataFrame) -> Self:
        import pandas as pd

        t, t_names = pd.factorize(data["task"].astype(str))
        w, w_names = pd.factorize(data["worker"].astype(str))
        raw, raw_names = pd.factorize(data["label"].astype(str))
        norm_of_raw, norm_names = pd.factorize(np.array([self.normaliser(str(v)) for v in raw_names], dtype=object))
        t = np.asarray(t, dtype=np.int64)
        raw = np.asarray(raw, dtype=np.int64)
        norm = np.asarray(norm_of_raw, dtype=np.int64)[raw]
        n_t, n_norm = len(t_names), len(norm_names)
        overall = np.bincount(norm, minlength=n_norm).astype(np.float64)
        pair, pair_count = np.unique(t * n_norm + norm, return_counts=True)
        pair_task, pair_norm = pair // n_norm, pair % n_norm
        # order pairs by task, then count desc, overall frequency desc, first appearance
        order = np.lexsort((pair_norm, -overall[pair_norm], -pair_count, pair_task))
        first_of_task = np.r_[True, pair_task[order][1:] != pair_task[order][:-1]]
        win = order[first_of_task]
        winner = np.empty(n_t, dtype=np.int64)
        winner[pair_task[win]] = pair_norm[win]
        count = np.bincount(t, minlength=n_t)
        self.confidence_ = np.zeros(n_t)
        self.confidence_[pair_task[win]] = pair_count[win] / count[pair_task[win]]
        # most common original spelling of the winner within the task
        match = norm == winner[t]
        n_raw = len(raw_names)
        rp, rp_count = np.unique(t[match] * n_raw + raw[match], return_counts=True)
        rp_task, rp_raw = rp // n_raw, rp % n_raw
        r_order = np.lexsort((rp_raw, -rp_count, rp_task))
        r_first = np.r_[True, rp_task[r_order][1:] != rp_task[r_order][:-1]]
        spelling = np.empty(n_t, dtype=np.int64)
        spelling[rp_task[r_order[r_first]]] = rp_raw[r_order[r_first]]
        self.label_text_ = np.asarray(raw_names, dtype=object)[spelling]
        n_w = len(w_names)
        self.worker_skill_ = np.bincount(w, weights=match.astype(np.float64), minlength=n_w) / np.maximum(
            np.bincount(w, minlength=n_w), 1
        )
        self.task_names_ = np.asarray(t_names, dtype=object)
        self.worker_names_ = np.asarray(w_names, dtype=object)
        self._pairs: tuple[IntArray, IntArray, FloatArray, ObjArray] = (
            pair_task,
            pair_norm,
            pair_count / count[pair_task],
            np.asarray(norm_names, dtype=object),
        )
        return self

    @property
    def labels_(self) -> pd.Series[Any]:
        import pandas as pd

        return pd.Series(self.label_text_, index=pd.Index(self.task_names_, name="task"), name="label")

    @property
    def probas_(self) -> pd.Series[Any]:
        import pandas as pd

        task, norm, share, names = self._pairs
        index = pd.MultiIndex.from_arrays([self.task_names_[task], names[norm]], names=["task", "answer"])
        return pd.Series(share, index=index, name="share")

    @property
    def skills_(self) -> pd.Series[Any]:
        import pandas as pd

        return pd.Series(self.worker_skill_, index=pd.Index(self.worker_names_, name="worker"), name="skill")

    def result_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame({"task": self.task_names_, "label": self.label_text_, "confidence": self.confidence_})
