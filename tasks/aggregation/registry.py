"""Method names -> aggregator classes, and the pure entry points the services call."""
from __future__ import annotations

from typing import Any

from tasks.aggregation.base import CategoricalAggregator
from tasks.aggregation.dawid_skene import DawidSkene
from tasks.aggregation.majority_vote import MajorityVote
from tasks.aggregation.one_coin_dawid_skene import OneCoinDawidSkene
from tasks.aggregation.wawa import Wawa
from tasks.aggregation.weighted_majority_vote import WeightedMajorityVote

CATEGORICAL: dict[str, type[CategoricalAggregator]] = {
    "mv": MajorityVote,
    "wmv": WeightedMajorityVote,
    "wawa": Wawa,
    "ods": OneCoinDawidSkene,
    "ds": DawidSkene,
}


def get_aggregator(method: str, **params: Any) -> CategoricalAggregator:
    return CATEGORICAL[method](**params)
