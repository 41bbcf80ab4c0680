"""Integer-coded answers, gold, and the base class shared by the categorical aggregators.

Everything here is plain numpy; pandas is imported lazily, only when a caller asks for pandas
objects (``labels_``, ``probas_``, ``skills_``) or hands in a DataFrame.  This keeps the import of
the package cheap for command-line use.

Conventions used by every aggregator:

- answers are three parallel integer arrays ``task``, ``worker``, ``label`` (codes into
  ``task_names``, ``worker_names``, ``classes``), one answer per (task, worker) pair;
- classes are sorted once (numerically when every label is a number, else as strings); "label order"
  in tie-breaks means this order;
- ``posterior_`` is an ``(n_tasks, n_classes)`` float array whose rows sum to one;
- gold tasks are clamped to their known label both while fitting and in the results.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple, Self, TypeAlias

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pandas as pd

IntArray: TypeAlias = npt.NDArray[np.int64]
FloatArray: TypeAlias = npt.NDArray[np.float64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
ObjArray: TypeAlias = npt.NDArray[np.object_]
GoldLike: TypeAlias = "Mapping[str, str] | pd.Series[Any]"
Progress: TypeAlias = Callable[[str], None]
"""Receives one-line progress messages from the iterative aggregators."""


def sort_labels(values: Iterable[str]) -> list[str]:
    """Sort label names: numerically when all of them parse as numbers, otherwise as strings."""
    uniq = list(dict.fromkeys(values))
    try:
        return sorted(uniq, key=lambda v: (float(v), v))
    except ValueError:
        return sorted(uniq)


def _object_array(values: Sequence[Any] | npt.NDArray[Any]) -> ObjArray:
    out = np.empty(len(values), dtype=object)
    out[:] = list(values) if not isinstance(values, np.ndarray) else values
    return out


@dataclass(frozen=True, eq=False)
class Answers:
    """Answers coded as integers: ``task[i]``, ``worker[i]``, ``label[i]`` for answer ``i``."""

    task: IntArray
    worker: IntArray
    label: IntArray
    task_names: ObjArray
    worker_names: ObjArray
    classes: ObjArray
    n_duplicates: int = 0
    """How many earlier answers were dropped because the same worker answered the same task again."""

    @property
    def n_answers(self) -> int:
        return int(self.task.shape[0])

    @property
    def n_tasks(self) -> int:
        return int(self.task_names.shape[0])

    @property
    def n_workers(self) -> int:
        return int(self.worker_names.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.classes.shape[0])

    @classmethod
    def from_codes(
        cls,
        task: npt.ArrayLike,
        worker: npt.ArrayLike,
        label: npt.ArrayLike,
        task_names: Sequence[Any] | npt.NDArray[Any],
        worker_names: Sequence[Any] | npt.NDArray[Any],
        label_names: Sequence[Any] | npt.NDArray[Any],
        *,
        classes: Sequence[str] | None = None,
        extra_labels: Iterable[str] = (),
    ) -> Answers:
        """Build from factorised columns (codes index the ``*_names``).

        Classes are ``classes`` when given (then every label must be one of them), else the sorted
        union of ``label_names`` and ``extra_labels``.  Repeated (task, worker) pairs keep their last
        answer; the number dropped is kept in ``n_duplicates``.
        """
        t = np.asarray(task, dtype=np.int64)
        w = np.asarray(worker, dtype=np.int64)
        y = np.asarray(label, dtype=np.int64)
        names = [str(v) for v in label_names]
        if classes is None:
            ordered = sort_labels([*names, *(str(v) for v in extra_labels)])
        else:
            ordered = [str(v) for v in classes]
            unknown = sorted(set(names) - set(ordered))
            if unknown:
                raise ValueError(f"labels not among the declared classes: {', '.join(unknown[:5])}")
        position = {name: i for i, name in enumerate(ordered)}
        remap = np.array([position[n] for n in names], dtype=np.int64)
        y = remap[y] if y.size else y
        n_dup = 0
        # a repeated (task, worker) pair keeps its last answer; sorting the keys first is cheaper
        # than the stable argsort in the common case where there is no repeat at all
        key = t * max(len(worker_names), 1) + w
        small = key.size and int(t.max(initial=0)) < (2**32 - 1) // max(len(worker_names), 1)
        sorted_key = np.sort(key.astype(np.uint32) if small else key)  # 32-bit keys sort faster
        if key.size > 1 and bool((sorted_key[1:] == sorted_key[:-1]).any()):
            order = np.argsort(key, kind="stable")
            sorted_key = key[order]
            superseded = np.zeros(key.size, dtype=bool)
            superseded[order[:-1]] = sorted_key[:-1] == sorted_key[1:]
            n_dup = int(superseded.sum())
            keep = ~superseded
            t, w, y = t[keep], w[keep], y[keep]
        return cls(
            task=t,
            worker=w,
            label=y,
            task_names=_object_array(task_names),
            worker_names=_object_array(worker_names),
            classes=_object_array(ordered),
            n_duplicates=n_dup,
        )

    @classmethod
    def from_frame(
        cls,
        data: pd.DataFrame,
        *,
        classes: Sequence[str] | None = None,
        extra_labels: Iterable[str] = (),
    ) -> Answers:
        """Build from a DataFrame with columns ``task``, ``worker``, ``label`` (values become strings)."""
        import pandas as pd

        missing = [c for c in ("task", "worker", "label") if c not in data.columns]
        if missing:
            raise ValueError(f"answers need columns task, worker, label; missing {', '.join(missing)}")
        codes: list[IntArray] = []
        uniques: list[list[str]] = []
        for col in ("task", "worker", "label"):
            values = data[col].astype(str).to_numpy(dtype=object)
            c, u = pd.factorize(values)
            codes.append(np.asarray(c, dtype=np.int64))
            uniques.append([str(v) for v in u])
        return cls.from_codes(
            codes[0],
            codes[1],
            codes[2],
            uniques[0],
            uniques[1],
            uniques[2],
            classes=classes,
            extra_labels=extra_labels,
        )

    def with_classes(self, extra: Iterable[str]) -> Answers:
        """The same answers with ``extra`` labels added to the classes (codes remapped)."""
        current = [str(c) for c in self.classes]
        new = [e for e in dict.fromkeys(str(v) for v in extra) if e not in set(current)]
        if not new:
            return self
        ordered = sort_labels([*current, *new])
        position = {name: i for i, name in enumerate(ordered)}
        remap = np.array([position[c] for c in current], dtype=np.int64)
        return replace(self, label=remap[self.label], classes=_object_array(ordered))

    def encode_gold(self, gold: GoldLike | None) -> Gold:
        """Code ``gold`` (task -> label); tasks nobody answered are ignored, unknown labels rejected."""
        if gold is None or len(gold) == 0:
            return Gold.empty()
        items = [(str(k), str(v)) for k, v in gold.items()]
        task_pos = {str(name): i for i, name in enumerate(self.task_names)}
        class_pos = {str(name): i for i, name in enumerate(self.classes)}
        unknown = sorted({v for _, v in items if v not in class_pos})
        if unknown:
            raise ValueError(f"gold labels not among the classes: {', '.join(unknown[:5])}")
        pairs = [(task_pos[k], class_pos[v]) for k, v in items if k in task_pos]
        if not pairs:
            return Gold.empty()
        arr = np.array(pairs, dtype=np.int64)
        return Gold(task=arr[:, 0], label=arr[:, 1])


class Gold(NamedTuple):
    """Known labels for some tasks, as codes."""

    task: IntArray
    label: IntArray

    @classmethod
    def empty(cls) -> Gold:
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))

    @property
    def size(self) -> int:
        return int(self.task.shape[0])

    def clamp(self, posterior: FloatArray) -> FloatArray:
        """Set the rows of gold tasks to the one-hot vector of their label (in place; returns it)."""
        if self.size:
            posterior[self.task] = 0.0
            posterior[self.task, self.label] = 1.0
        return posterior


# --------------------------------------------------------------------------- array helpers
def vote_matrix(answers: Answers, weights: FloatArray | None = None) -> FloatArray:
    """``(n_tasks, n_classes)`` sums of (weighted) votes."""
    k = answers.n_classes
    flat = np.bincount(answers.task * k + answers.label, weights=weights, minlength=answers.n_tasks * k)
    return flat.reshape(answers.n_tasks, k).astype(np.float64, copy=False)


def normalise_rows(matrix: FloatArray) -> FloatArray:
    """Rows scaled to sum to one; all-zero rows become uniform."""
    total = matrix.sum(axis=1, keepdims=True)
    k = matrix.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, matrix / np.where(total > 0, total, 1.0), 1.0 / max(k, 1))
    return out


def softmax_rows(logits: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Row-wise softmax and the log-sum-exp of every row (the log normaliser)."""
    top = logits.max(axis=1, keepdims=True)
    shifted = np.exp(logits - top)
    total = shifted.sum(axis=1, keepdims=True)
    shifted /= total
    return shifted, (np.log(total) + top)[:, 0]


def posterior_and_loglik(log_joint: FloatArray, gold: Gold) -> tuple[FloatArray, float]:
    """E-step helper: posterior from unnormalised log joint scores, with gold tasks clamped.

    The returned log-likelihood counts free tasks by their log marginal and gold tasks by the log
    joint of their known label (the complete-data likelihood), which is what clamped EM increases.
    """
    post, lse = softmax_rows(log_joint)
    if gold.size:
        lse[gold.task] = log_joint[gold.task, gold.label]
        gold.clamp(post)
    return post, float(lse.sum())


def argmax_with_ties(scores: FloatArray, *tie_keys: FloatArray, rtol: float = 1e-9) -> IntArray:
    """Row argmax; rows whose top score is shared are broken by each ``tie_keys`` array in turn
    (each ``(n_classes,)`` or ``(n_tasks, n_classes)``), then by the lowest class index."""
    top = scores.max(axis=1, keepdims=True)
    best = scores >= top - rtol * np.maximum(np.abs(top), 1.0)
    tied = np.flatnonzero(best.sum(axis=1) > 1)
    if tied.size:
        cand = best[tied]
        for key in tie_keys:
            k = np.broadcast_to(key, scores.shape)[tied] if key.ndim == 2 else np.broadcast_to(key, cand.shape)
            masked = np.where(cand, k, -np.inf)
            kmax = masked.max(axis=1, keepdims=True)
            cand &= masked >= kmax - rtol * np.maximum(np.abs(kmax), 1.0)
        best[tied] = cand
    return np.asarray(np.argmax(best, axis=1), dtype=np.int64)


def agreement(
    answers: Answers, label_codes: IntArray, prior_correct: float = 0.0, prior_wrong: float = 0.0
) -> FloatArray:
    """Per worker share of answers equal to ``label_codes`` of the task, with Beta pseudo-counts."""
    hit = (answers.label == label_codes[answers.task]).astype(np.float64)
    correct = np.bincount(answers.worker, weights=hit, minlength=answers.n_workers)
    total = np.bincount(answers.worker, minlength=answers.n_workers).astype(np.float64)
    denom = total + prior_correct + prior_wrong
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (correct + prior_correct) / np.where(denom > 0, denom, 1.0), np.nan)


class Convergence:
    """Stopping rule for the iterative aggregators.

    ``update(objective)`` records the objective (a log-likelihood, possibly plus log priors) and
    returns True when its change since the previous call, divided by the number of answers, is at
    most ``tol`` in absolute value, or when ``max_iter`` updates have been made.
    """

    def __init__(
        self, tol: float, max_iter: int, n_answers: int, name: str = "", progress: Progress | None = None
    ) -> None:
        self.tol = tol
        self.max_iter = max_iter
        self.scale = max(n_answers, 1)
        self.name = name
        self.progress = progress
        self.history: list[float] = []
        self.converged = False

    def update(self, objective: float) -> bool:
        self.history.append(objective)
        n = len(self.history)
        if self.progress is not None:
            self.progress(f"{self.name} iteration {n}: objective {objective:.6f}")
        if n >= 2 and abs(objective - self.history[-2]) / self.scale <= self.tol:
            self.converged = True
            return True
        return n >= self.max_iter


class FitResult(NamedTuple):
    """What an aggregator's ``_fit`` returns."""

    posterior: FloatArray
    """(n_tasks, n_classes) posterior; gold rows are clamped afterwards by the base class."""
    skill: FloatArray
    """(n_workers,) accuracy-like skill of every worker."""
    label_codes: IntArray | None = None
    """Chosen class per task when it is not simply the posterior argmax (majority-vote tie-breaks)."""


class CategoricalAggregator:
    """Base class: ``fit(data, gold=None)`` returns self; results in ``labels_``, ``probas_``, ``skills_``.

    ``data`` is a DataFrame with columns ``task, worker, label`` or an :class:`Answers`; ``gold`` maps
    task -> known label.  Subclasses implement ``_fit``.  Array results: ``posterior_``,
    ``label_codes_``, ``worker_skill_``, ``answers_`` (the coded input), ``gold_``.
    """

    answers_: Answers
    gold_: Gold
    posterior_: FloatArray
    label_codes_: IntArray
    worker_skill_: FloatArray
    n_iter_: int = 0
    objective_history_: list[float]

    def __init__(self) -> None:
        self.objective_history_ = []

    def _fit(self, answers: Answers, gold: Gold) -> FitResult:
        raise NotImplementedError

    def fit(self, data: pd.DataFrame | Answers, gold: GoldLike | None = None) -> Self:
        gold_labels = [str(v) for _, v in gold.items()] if gold is not None and len(gold) else []
        if isinstance(data, Answers):
            answers = data.with_classes(gold_labels)
        else:
            answers = Answers.from_frame(data, extra_labels=gold_labels)
        coded = answers.encode_gold(gold)
        if answers.n_tasks == 0 or answers.n_classes <= 1:
            result = FitResult(
                np.ones((answers.n_tasks, max(answers.n_classes, 1)))[:, : answers.n_classes],
                np.ones(answers.n_workers),
            )
        else:
            result = self._fit(answers, coded)
        posterior = coded.clamp(np.asarray(result.posterior, dtype=np.float64))
        if result.label_codes is None:
            codes = np.argmax(posterior, axis=1).astype(np.int64) if answers.n_classes else np.zeros(0, np.int64)
        else:
            codes = result.label_codes.copy()
            if coded.size:
                codes[coded.task] = coded.label
        self.answers_, self.gold_ = answers, coded
        self.posterior_, self.label_codes_, self.worker_skill_ = posterior, codes, result.skill
        return self

    def fit_predict(self, data: pd.DataFrame | Answers, gold: GoldLike | None = None) -> pd.Series[Any]:
        return self.fit(data, gold).labels_

    # ------------------------------------------------------------------ results
    @property
    def confidence_(self) -> FloatArray:
        """Posterior probability of the chosen label of every task."""
        return self.posterior_[np.arange(self.label_codes_.shape[0]), self.label_codes_]

    @property
    def labels_(self) -> pd.Series[Any]:
        """Chosen label per task (index: task)."""
        import pandas as pd

        index = pd.Index(self.answers_.task_names, name="task")
        return pd.Series(self.answers_.classes[self.label_codes_], index=index, name="label")

    @property
    def probas_(self) -> pd.DataFrame:
        """Posterior of every class per task (index: task, columns: classes)."""
        import pandas as pd

        return pd.DataFrame(
            self.posterior_,
            index=pd.Index(self.answers_.task_names, name="task"),
            columns=pd.Index(self.answers_.classes, name="label"),
        )

    @property
    def skills_(self) -> Any:
        """Per worker skill (an accuracy in [0, 1], index: worker)."""
        import pandas as pd

        return pd.Series(self.worker_skill_, index=pd.Index(self.answers_.worker_names, name="worker"), name="skill")

    def result_frame(self) -> pd.DataFrame:
        """``task, label, confidence`` rows, one per task."""
        import pandas as pd

        return pd.DataFrame(
            {
                "task": self.answers_.task_names,
                "label": self.answers_.classes[self.label_codes_],
                "confidence": self.confidence_,
            }
        )
