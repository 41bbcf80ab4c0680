"""Reads for the MTurk pages and services."""

from __future__ import annotations

from tasks.models import Item


def list_mturk_hit_items(hit_id: int) -> list[Item]:
    """A Hit's items in display order, with the external ids MTurk answers are keyed by."""
    return list(
        Item.objects.filter(hit_items__hit_id=hit_id)
        .order_by("hit_items__position")
        .only("id", "external_id", "payload")
    )
