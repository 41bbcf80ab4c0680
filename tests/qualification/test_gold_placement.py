"""Where gold goes on a multi-item page (pure functions)."""

from __future__ import annotations

import random

import pytest

from qualification.gold_placement import choose_gold, draw_gold_slots, gold_page_chance, place_on_page


def test_gold_places_per_hit_average_the_rate_and_leave_every_hit_an_item_of_its_own():
    rng = random.Random(0)
    draws = [draw_gold_slots(page_size=10, rate=0.1, gold_items=500, rng=rng) for _ in range(4000)]
    assert 0.9 < sum(draws) / len(draws) < 1.1
    assert len(set(draws)) >= 4  # a page may hold none, one or several
    assert max(draw_gold_slots(page_size=4, rate=1.0, gold_items=500, rng=rng) for _ in range(50)) == 3
    assert draw_gold_slots(page_size=10, rate=0.9, gold_items=2, rng=rng) <= 2
    assert draw_gold_slots(page_size=1, rate=0.5, gold_items=9, rng=rng) == 0
    assert draw_gold_slots(page_size=10, rate=0.0, gold_items=9, rng=rng) == 0


@pytest.mark.parametrize(("worker", "job", "chance"), [(0.1, 0.1, 0.0), (0.05, 0.1, 0.0), (0.5, 0.1, 4 / 9), (1, 0, 1)])
def test_all_gold_pages_make_up_a_boost_above_the_jobs_rate(worker, job, chance):
    assert gold_page_chance(worker_rate=worker, job_rate=job) == pytest.approx(chance)
    p = gold_page_chance(worker_rate=worker, job_rate=job)
    assert p * 1 + (1 - p) * job == pytest.approx(max(worker, job))


def test_chosen_gold_is_distinct_and_lands_on_the_page_where_placed():
    rng = random.Random(1)
    chosen = choose_gold(fresh=[11, 12, 13, 14], slots=3, page_size=6, rng=rng)
    assert len({item for item, _ in chosen}) == 3 and all(0 <= place < 6 for _, place in chosen)
    page = place_on_page([1, 2, 3], [(place, item) for item, place in chosen])
    assert len(page) == 6 and [x for x in page if x < 10] == [1, 2, 3]
    assert all(page[place] == item for item, place in chosen)
    assert choose_gold(fresh=[], slots=0, page_size=6, rng=rng) == []
    with pytest.raises(ValueError, match="cannot be filled"):
        choose_gold(fresh=[1], slots=2, page_size=6, rng=rng)


def test_a_place_past_a_short_page_goes_last():
    assert place_on_page(["a"], [(4, "g"), (0, "h")]) == ["h", "a", "g"]
