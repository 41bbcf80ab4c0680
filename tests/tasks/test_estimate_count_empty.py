"""``estimate_count`` on a queryset Django knows is empty (``.none()``, ``pk__in=[]``...): Django raises
``EmptyResultSet`` instead of writing its SQL, so there is no statement to ask the planner about. The estimate
is 0 on PostgreSQL (None, "count exactly", elsewhere), and the paginator over it counts 0 and shows an empty
first page instead of failing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from tasks.models import CostEntry, Item
from tests.factories import ItemFactory
from workforce.paginator import EstimatedCountPaginator, estimate_count

pytestmark = pytest.mark.django_db

EMPTY: dict[str, Callable[[], Any]] = {
    "none": lambda: Item.objects.order_by("pk").none(),
    "pk-in-nothing": lambda: Item.objects.filter(pk__in=[]).order_by("pk"),
    "ordered-ledger-in-no-job": lambda: CostEntry.objects.filter(job_id__in=[]).order_by("-id"),
    "empty-and-more": lambda: Item.objects.filter(Q(pk__in=[]) & Q(external_id__startswith="a")).order_by("pk"),
    "in-an-empty-subquery": lambda: Item.objects.filter(pk__in=Item.objects.none().values("pk")).order_by("pk"),
}


@pytest.mark.parametrize("make", EMPTY.values(), ids=EMPTY.keys())
def test_an_empty_queryset_counts_nothing_on_any_database(make: Callable[[], Any]) -> None:
    ItemFactory.create_batch(3)  # rows the empty queryset must not count

    estimate = estimate_count(make())
    paginator = EstimatedCountPaginator(make(), 10)

    assert estimate == (0 if connection.vendor == "postgresql" else None)
    assert paginator.count == 0
    assert list(paginator.page(1)) == []


def test_off_postgresql_the_estimate_is_none_so_the_paginator_counts_exactly() -> None:
    if connection.vendor == "postgresql":
        pytest.skip("the SQLite answer")
    ItemFactory.create_batch(3)

    assert estimate_count(Item.objects.none()) is None
    assert estimate_count(Item.objects.all()) is None
    assert EstimatedCountPaginator(Item.objects.order_by("id"), 2).count == 3


@pytest.mark.postgres
@pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs PostgreSQL (EXPLAIN estimates)")
@pytest.mark.parametrize("make", EMPTY.values(), ids=EMPTY.keys())
def test_on_postgresql_an_empty_queryset_is_estimated_at_zero_without_asking_the_planner(
    make: Callable[[], Any],
) -> None:
    ItemFactory.create_batch(3)
    queryset = make()

    with CaptureQueriesContext(connection) as captured:
        estimate = estimate_count(queryset)

    assert estimate == 0
    assert captured.captured_queries == []  # nothing to EXPLAIN: Django knows the answer
    # A queryset that is not empty is still estimated by the planner.
    assert estimate_count(Item.objects.all()) is not None
