"""Multi-label answers: every label is its own present/absent problem."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from tasks.aggregation.base import Answers, CategoricalAggregator, FloatArray, ObjArray, sort_labels

if TYPE_CHECKING:
    import pandas as pd

ABSENT, PRESENT = "absent", "present"


def split_labels(value: Any, sep: str) -> frozenset[str]:
    """A worker's answer as a set of labels: a collection as it is, a string split on ``sep``."""
    if isinstance(value, str):
        return frozenset(p.strip() for p in value.split(sep) if p.strip())
    if isinstance(value, Collection):
        return frozenset(str(v) for v in value)
    return frozenset()


class MultiLabel:
    """Runs a categorical aggregator (``base``, default majority vote) once per label on the binary
    answers "this worker did / did not tick the label for this task".  The ``label`` column holds a
    collection of labels or a ``sep``-joined string (an empty answer means "none apply").

    Results: ``probas_`` (tasks x labels, the posterior that each label applies), ``labels_`` (the
    set of labels whose posterior exceeds ``threshold``), ``skills_`` (workers x labels), and
    ``models_`` (the fitted per-label aggregators).  Gold maps task -> collection of labels.
    """

    models_: dict[str, CategoricalAggregator]
    presence_: FloatArray
    task_names_: ObjArray
    worker_names_: ObjArray
    label_names_: list[str]

    def __init__(
        self, base: Callable[[], CategoricalAggregator] | None = None, *, sep: str = "|", threshold: float = 0.5
    ) -> None:
        from tasks.aggregation.majority_vote import MajorityVote

        self.base = base or MajorityVote
        self.sep = sep
        self.threshold = threshold

    def fit(self, data: pd.DataFrame, gold: Mapping[str, Collection[str]] | None = None) -> Self:
        import pandas as pd

        t, t_names = pd.factorize(data["task"].astype(str))
        w, w_names = pd.factorize(data["worker"].astype(str))
        sets = [split_labels(v, self.sep) for v in data["label"].tolist()]
        gold_sets = {str(k): split_labels(v, self.sep) for k, v in (gold or {}).items()}
        names = sort_labels({lab for s in sets for lab in s} | {lab for s in gold_sets.values() for lab in s})
        row = np.repeat(np.arange(len(sets)), [len(s) for s in sets])
        which = np.array([names.index(lab) for s in sets for lab in sorted(s)], dtype=np.int64)
        self.models_ = {}
        self.presence_ = np.zeros((len(t_names), len(names)))
        for j, name in enumerate(names):
            ticked = np.zeros(len(sets), dtype=np.int64)
            ticked[row[which == j]] = 1
            answers = Answers.from_codes(
                t, w, ticked, list(t_names), list(w_names), [ABSENT, PRESENT], classes=[ABSENT, PRESENT]
            )
            label_gold = {k: PRESENT if name in s else ABSENT for k, s in gold_sets.items()}
            model = self.base().fit(answers, label_gold or None)
            self.models_[name] = model
            self.presence_[:, j] = model.posterior_[:, 1]
        self.task_names_ = np.asarray(t_names, dtype=object)
        self.worker_names_ = np.asarray(w_names, dtype=object)
        self.label_names_ = names
        return self

    @property
    def probas_(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            self.presence_,
            index=pd.Index(self.task_names_, name="task"),
            columns=pd.Index(self.label_names_, name="label"),
        )

    @property
    def labels_(self) -> pd.Series[Any]:
        import pandas as pd

        chosen = self.presence_ > self.threshold
        names = np.array(self.label_names_, dtype=object)
        values = [frozenset(names[r].tolist()) for r in chosen]
        return pd.Series(values, index=pd.Index(self.task_names_, name="task"), name="label")

    @property
    def skills_(self) -> pd.DataFrame:
        import pandas as pd

        skill = np.column_stack([m.worker_skill_ for m in self.models_.values()]) if self.models_ else None
        return pd.DataFrame(
            skill, index=pd.Index(self.worker_names_, name="worker"), columns=pd.Index(self.label_names_, name="label")
        )

    def result_frame(self) -> pd.DataFrame:
        """``task, label, confidence``: labels joined with ``sep``; confidence is the probability of
        the whole decision (product over labels of the posterior of the chosen side)."""
        import pandas as pd

        chosen = self.presence_ > self.threshold
        names = np.array(self.label_names_, dtype=object)
        joined = [self.sep.join(names[r].tolist()) for r in chosen]
        confidence = np.where(chosen, self.presence_, 1.0 - self.presence_).prod(axis=1)
        return pd.DataFrame({"task": self.task_names_, "label": joined, "confidence": confidence})
