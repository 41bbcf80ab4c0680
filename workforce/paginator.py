"""A paginator that never counts a huge table: on PostgreSQL, above a threshold it takes the planner's
row estimate instead of ``COUNT(*)`` (the page links are then approximate, which a change list can live with).
A queryset Django knows is empty (``.none()``, ``pk__in=[]``) has no SQL to explain: it counts 0."""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.db import connections

EXACT_BELOW = 20_000


def estimate_count(queryset: Any) -> int | None:
    """The planner's estimate of the rows ``queryset`` returns, or None off PostgreSQL; 0, without asking the
    planner, for a queryset Django knows matches nothing (it raises ``EmptyResultSet`` instead of writing SQL)."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    try:
        sql, params = queryset.query.sql_with_params()
    except EmptyResultSet:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class EstimatedCountPaginator(Paginator):
    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if hasattr(queryset, "query"):
            estimate = estimate_count(queryset)
            if estimate is not None and estimate >= EXACT_BELOW:
                return estimate
        return super().count
