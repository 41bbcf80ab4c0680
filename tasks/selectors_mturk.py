"""Reads for the MTurk pages and services."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from tasks.models import HitItem, Item


def list_mturk_hit_items(hit_id: int) -> list[Item]:
    """A Hit's items in display order (gold placed among them when the Hit was built), with the external ids
    MTurk answers are keyed by and ``place`` (1 is first) for the page's own references."""
    items = list(
        Item.objects.filter(hit_items__hit_id=hit_id)
        .order_by("hit_items__position")
        .only("id", "external_id", "payload")
    )
    for place, item in enumerate(items, start=1):
        item.place = place  # type: ignore[attr-defined]
    return items


def hit_places(hit_ids: Iterable[int]) -> dict[int, list[str]]:
    """Per Hit, its items' external ids in display order: ``place:<n>`` on our MTurk pages is entry ``n - 1``
    (one query for any number of Hits)."""
    places: dict[int, list[str]] = defaultdict(list)
    rows = (
        HitItem.objects.filter(hit_id__in=list(hit_ids))
        .order_by("hit_id", "position")
        .values_list("hit_id", "item__external_id")
    )
    for hit_id, external_id in rows:
        places[hit_id].append(external_id)
    return dict(places)
