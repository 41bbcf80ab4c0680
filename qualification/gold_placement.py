"""Where hidden gold goes on a multi-item page. Pure: no Django, no database.

A page of a multi-item job always shows ``items_per_hit`` items. A Hit keeps ``gold_slots`` of them free:
each worker it is handed to gets that many gold items they have not seen, at random places among the
Hit's own items. The number of slots is drawn per Hit (binomial at the job's gold rate), so the share of
gold matches the rate over many pages while any one page may hold none, one or several gold items.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def draw_gold_slots(*, page_size: int, rate: float, gold_items: int, rng: random.Random) -> int:
    """Gold places on one Hit's pages: Binomial(page_size, rate), at most ``gold_items`` and at most
    ``page_size - 1`` (every Hit keeps at least one item of its own)."""
    if page_size <= 1 or rate <= 0 or gold_items <= 0:
        return 0
    drawn = sum(1 for _ in range(page_size) if rng.random() < rate)
    return min(drawn, gold_items, page_size - 1)


def gold_page_chance(*, worker_rate: float, job_rate: float) -> float:
    """Chance that a worker's next page is all gold, so that their share of gold is ``worker_rate``
    while ordinary pages carry ``job_rate`` (a boost above the job's rate; 0 without one)."""
    if worker_rate <= job_rate:
        return 0.0
    if job_rate >= 1:
        return 1.0
    return min(1.0, (worker_rate - job_rate) / (1 - job_rate))


def choose_gold(*, fresh: Sequence[int], slots: int, page_size: int, rng: random.Random) -> list[tuple[int, int]]:
    """``slots`` gold items from ``fresh`` with their places on a page of ``page_size``: (item, place)."""
    if slots <= 0:
        return []
    if slots > len(fresh) or slots > page_size:
        raise ValueError(f"{slots} gold places cannot be filled from {len(fresh)} items on a page of {page_size}.")
    items = rng.sample(list(fresh), slots)
    places = sorted(rng.sample(range(page_size), slots))
    return list(zip(items, places, strict=True))


def place_on_page(own: Sequence[T], placed: Sequence[tuple[int, T]]) -> list[T]:
    """The page: the Hit's ``own`` items in order, with each ``(place, item)`` of ``placed`` at its place
    (after the last item when the page is shorter than the place)."""
    page = list(own)
    for place, item in sorted(placed, key=lambda pair: pair[0]):
        page.insert(min(place, len(page)), item)
    return page
