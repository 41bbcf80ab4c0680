"""Reads for the MTurk pages and services."""

from __future__ import annotations

from tasks.models import Item


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
