"""Method names -> aggregators, and the pure entry points the services call.

    get_aggregator("ds", max_iter=50)               # a fresh, unfitted aggregator
    aggregate_frame(df, "ds", gold={"t1": "cat"})   # DataFrame task, label, confidence

Categorical methods: ``mv``, ``wmv``, ``wawa``, ``ods``, ``ds``, ``glad``, ``mace``.  Other answer
kinds: ``median`` and ``trimmed_mean`` (numbers), ``text`` (free text), ``multilabel`` (sets of
labels; ``base=`` names the categorical method used per label, default ``mv``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from tasks.aggregation.base import CategoricalAggregator, GoldLike
from tasks.aggregation.dawid_skene import DawidSkene
from tasks.aggregation.glad import GLAD
from tasks.aggregation.mace import MACE
from tasks.aggregation.majority_vote import MajorityVote
from tasks.aggregation.multilabel import MultiLabel
from tasks.aggregation.numeric import Median, TrimmedMean
from tasks.aggregation.one_coin_dawid_skene import OneCoinDawidSkene
from tasks.aggregation.text import TextVote
from tasks.aggregation.wawa import Wawa
from tasks.aggregation.weighted_majority_vote import WeightedMajorityVote

if TYPE_CHECKING:
    import pandas as pd

CATEGORICAL: dict[str, type[CategoricalAggregator]] = {
    "mv": MajorityVote,
    "wmv": WeightedMajorityVote,
    "wawa": Wawa,
    "ods": OneCoinDawidSkene,
    "ds": DawidSkene,
    "glad": GLAD,
    "mace": MACE,
}
OTHER = ("median", "trimmed_mean", "text", "multilabel")
METHODS = (*CATEGORICAL, *OTHER)


def get_aggregator(method: str, **params: Any) -> Any:
    """A new aggregator for ``method`` built with ``params`` (see each class for its parameters).

    Raises ``ValueError`` for an unknown method name."""
    if method in CATEGORICAL:
        return CATEGORICAL[method](**params)
    if method == "median":
        return Median(**params)
    if method == "trimmed_mean":
        return TrimmedMean(**params)
    if method == "text":
        return TextVote(**params)
    if method == "multilabel":
        base = params.pop("base", "mv")
        base_params = params.pop("base_params", {})
        return MultiLabel(lambda: CATEGORICAL[base](**base_params), **params)
    raise ValueError(f"unknown aggregation method {method!r}; choose one of {', '.join(METHODS)}")


def aggregate_frame(
    answers: pd.DataFrame,
    method: str,
    gold: GoldLike | Mapping[str, Collection[str]] | None = None,
    **params: Any,
) -> pd.DataFrame:
    """Aggregate ``answers`` (columns ``task, worker, label``) with ``method``.

    Returns a DataFrame with columns ``task`` (str), ``label`` (str for categorical and text
    methods, float for numeric ones, ``sep``-joined str for multilabel) and ``confidence`` (float in
    [0, 1]), one row per task.  ``gold`` (task -> known label) clamps those tasks for the
    categorical and multilabel methods; numeric and text methods ignore it.  A worker's repeated
    answer to the same task keeps the last one (``attrs["n_duplicates"]`` on the result says how
    many were dropped, categorical methods only).
    """
    model = get_aggregator(method, **params)
    if method in CATEGORICAL or method == "multilabel":
        model.fit(answers, gold)
    else:
        model.fit(answers)
    frame: pd.DataFrame = model.result_frame()
    if isinstance(model, CategoricalAggregator):
        frame.attrs["n_duplicates"] = model.answers_.n_duplicates
    return frame
