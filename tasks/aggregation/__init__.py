"""Consensus engine: pure numpy/scipy aggregation of crowd answers (no Django imports).

One algorithm per module; each class has ``fit(data, gold=None)`` returning self and the results
``labels_``, ``probas_``, ``skills_``.  Entry points: :func:`tasks.aggregation.registry.get_aggregator`
and :func:`tasks.aggregation.registry.aggregate_frame`; CSV helpers in :mod:`tasks.aggregation.io`.
pandas is imported lazily, so importing this package costs only numpy.
"""

from __future__ import annotations

from tasks.aggregation.base import Answers, CategoricalAggregator, Gold
from tasks.aggregation.registry import METHODS, aggregate_frame, get_aggregator

__all__ = ["METHODS", "Answers", "CategoricalAggregator", "Gold", "aggregate_frame", "get_aggregator"]
