"""Hidden gold on multi-item pages: mixed in at random places, pages of one size, nothing that gives it away."""

from __future__ import annotations

import io
import json
import random
import re
from collections import Counter
from typing import Any

import pytest
from django.test import Client

from tasks.models import (
    Answer,
    Assignment,
    AssignmentGoldItem,
    AssignmentState,
    ConsensusLabel,
    CostEntry,
    CostKind,
    GoldGrade,
    Hit,
    HitItem,
    Item,
    JobState,
)
from tasks.selectors import list_page_items
from tasks.services import hits as hit_services
from tasks.services.collection import submit_assignment
from tasks.services.consensus import compute_consensus
from tasks.services.errors import NoWorkAvailable
from tasks.services.imports import import_items
from tasks.services.pool import assign_next_hit
from tasks.services.publishing import publish_job
from tasks.services.review_batch import approve_assignments
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

PAGE = 5


@pytest.fixture(autouse=True)
def _seeded_hit_building(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gold places per Hit are drawn at random when Hits are built: seeded here so each run is the same."""
    monkeypatch.setattr(hit_services, "_random", random.Random(11))


def _job(actor: Any, *, regular: int = 40, gold: int = 30, **fields: Any) -> Any:
    fields = {"items_per_hit": PAGE, "gold_rate": 0.2, "redundancy": 2, **fields}
    job = JobFactory(**fields)
    rows = "".join(f"n{i},text {i},\n" for i in range(regular))
    rows += "".join(f"g{i},text {1000 + i},{'pos' if i % 2 else 'neg'}\n" for i in range(gold))
    import_items(job=job, stream=io.StringIO("external_id,text,gold\n" + rows), filename="i.csv", actor=actor)
    return publish_job(job=job, actor=actor)


def _work(job: Any, worker: Any, rng: random.Random, label: str = "pos") -> Assignment | None:
    try:
        lease = assign_next_hit(job=job, worker=worker, rng=rng)
    except NoWorkAvailable:
        return None
    page = list_page_items(lease)
    submit_assignment(assignment=lease, worker=worker, answers={i + 1: label for i in range(len(page))}, by_place=True)
    return lease


def test_every_page_shows_the_same_number_of_items_with_gold_at_varied_places(actor, make_worker):
    job = _job(actor)
    workers = [make_worker() for _ in range(8)]
    rng = random.Random(2)
    sizes, places, golds = Counter[int](), Counter[int](), 0
    while any([_work(job, w, rng) is not None for w in workers]):
        pass
    for lease in Assignment.objects.filter(job=job):
        page = list_page_items(lease)
        sizes[len(page)] += 1
        for row in AssignmentGoldItem.objects.filter(assignment=lease):
            places[row.position] += 1
            golds += 1
            assert page[row.position].pk == row.item_id  # shown where it was placed
    assert set(sizes) == {PAGE}
    assert len(places) >= 4  # gold lands all over the page, not in one spot
    share = golds / (PAGE * sum(sizes.values()))
    assert 0.1 < share < 0.35  # the job's rate is 0.2
    # each gold item reaches each worker at most once, and every ordinary item got its two answers
    placed = list(AssignmentGoldItem.objects.values_list("worker_id", "item_id"))
    assert len(placed) == len(set(placed))
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    counts = Counter(Answer.objects.filter(job=job, item__is_gold=False).values_list("item_id", flat=True))
    assert set(counts.values()) == {2} and len(counts) == 40
    # a Hit keeps gold_slots places free and holds only ordinary items itself
    assert not HitItem.objects.filter(hit__job=job, item__is_gold=True).exists()
    assert all(h.items.count() + h.gold_slots == PAGE for h in Hit.objects.filter(job=job))


def _skeleton(html: str) -> str:
    html = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "UUID", html)
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "CSRF", html)
    html = re.sub(r'data-seconds-left="\d+"', "SECONDS", html)
    return re.sub(r"<blockquote[^>]*>.*?</blockquote>", "TEXT", html, flags=re.S)


def test_pages_with_and_without_gold_look_alike_and_name_items_only_by_place(actor, make_worker):
    job = _job(actor)
    worker = make_worker()
    client = Client()
    client.force_login(worker.user)
    ids = {str(pk) for pk in Item.objects.filter(job=job).values_list("pk", flat=True)}
    skeletons: dict[int, str] = {}
    lease = assign_next_hit(job=job, worker=worker, rng=random.Random(4))
    for _ in range(8):
        html = client.get(f"/work/tasks/{lease.uuid}/").content.decode()
        visible = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
        assert "gold" not in visible.lower()
        assert re.findall(r'data-item="(\d+)"', html) == [str(n) for n in range(1, PAGE + 1)]
        assert sorted(set(re.findall(r'name="answer-(\d+)"', html))) == [str(n) for n in range(1, PAGE + 1)]
        placed = AssignmentGoldItem.objects.filter(assignment=lease).count()
        skeletons.setdefault(min(placed, 1), _skeleton(html))
        body = client.post(
            f"/work/tasks/{lease.uuid}/submit/",
            {f"answer-{n}": "neutral" for n in range(1, PAGE + 1)},
            HTTP_ACCEPT="application/json",
        ).json()
        assert "gold" not in json.dumps(body).lower()
        task = body["next"]
        assert [item["id"] for item in task["items"]] == list(range(1, PAGE + 1))
        assert not {str(item["id"]) for item in task["items"]} - set(map(str, range(1, PAGE + 1)))
        assert all(set(item) == {"id", "text"} for item in task["items"])  # no id, flag or answer
        lease = Assignment.objects.get(uuid=task["uuid"])
    assert set(skeletons) == {0, 1}  # seen both kinds of page
    assert skeletons[0] == skeletons[1]
    assert not any(f'"{pk}"' in skeletons[1] for pk in ids if int(pk) > PAGE)  # no item id in the page


def test_a_placed_gold_answer_is_graded_once_paid_with_its_page_and_kept_out_of_consensus(actor, make_worker):
    job = _job(actor, redundancy=1)
    worker = make_worker()
    rng = random.Random(1)
    leases = []
    while (lease := _work(job, worker, rng, label="pos")) is not None:
        leases.append(lease)
    placed = dict(AssignmentGoldItem.objects.filter(worker=worker).values_list("item_id", "assignment_id"))
    assert placed  # some gold was on the pages
    grades = dict(GoldGrade.objects.filter(worker=worker).values_list("item_id", "score"))
    assert set(grades) == set(placed)  # every placed gold item graded, once
    answers = dict(Item.objects.filter(pk__in=placed).values_list("pk", "gold_answer"))
    assert all(grades[pk] == (1.0 if answers[pk] == "pos" else 0.0) for pk in placed)
    approve_assignments(job=job, actor=actor)
    rewards = CostEntry.objects.filter(job=job, kind=CostKind.INTERNAL_PAY)
    assert sorted(rewards.values_list("assignment_id", flat=True)) == sorted(a.pk for a in leases)  # one per page
    assert sum(r.amount for r in rewards) == job.reward * len(leases)
    assert Assignment.objects.filter(job=job, state=AssignmentState.APPROVED).count() == len(leases)
    result = compute_consensus(job=job, actor=actor)
    assert result.answers == 40  # the ordinary items' answers only
    assert not ConsensusLabel.objects.filter(item_id__in=placed).exists()
    assert ConsensusLabel.objects.filter(job=job).count() == 40


def test_gold_a_worker_has_seen_is_never_placed_again_and_unfillable_places_are_given_up(actor, make_worker):
    job = _job(actor, regular=40, gold=3, gold_rate=0.5, redundancy=1)
    worker = make_worker()
    rng = random.Random(3)
    wanted = sum(Hit.objects.filter(job=job, is_gold=False).values_list("gold_slots", flat=True))
    assert wanted > 3  # more gold places than the gold set can fill for one worker
    while _work(job, worker, rng) is not None:
        pass
    seen = list(AssignmentGoldItem.objects.filter(worker=worker).values_list("item_id", flat=True))
    assert len(seen) == len(set(seen)) == 3
    # Once the worker's unseen gold ran out, the Hits left gave up their gold places rather than stay open.
    assert not Hit.objects.filter(job=job, is_gold=False).exclude(state="complete").exists()
    assert job.__class__.objects.get(pk=job.pk).state == JobState.COMPLETED
    assert all(len(list_page_items(a)) <= PAGE for a in Assignment.objects.filter(job=job))


def test_a_boosted_worker_gets_all_gold_pages_of_the_same_size(actor, make_worker):
    job = _job(actor, gold=10, gold_rate=0.2, gold_boost_rate=1.0, gold_boost_until=5, block_below_accuracy=0.6)
    assert Hit.objects.filter(job=job, is_gold=True, gold_slots=PAGE).count() == 10 // PAGE
    worker = make_worker()
    lease = assign_next_hit(job=job, worker=worker, rng=random.Random(0))
    page = list_page_items(lease)
    assert lease.hit.is_gold and len(page) == PAGE and all(item.pk for item in page)
    assert Item.objects.filter(pk__in=[i.pk for i in page], is_gold=True).count() == PAGE
    submit_assignment(assignment=lease, worker=worker, answers={n: "neg" for n in range(1, PAGE + 1)}, by_place=True)
    assert GoldGrade.objects.filter(worker=worker).count() == PAGE


def test_hits_fixed_at_publish_carry_their_gold_among_their_own_items(actor):
    job = JobFactory(items_per_hit=4, gold_rate=0.25, marketplace="mturk")
    rows = "".join(f"n{i},text {i},\n" for i in range(30)) + "".join(f"g{i},text {1000 + i},pos\n" for i in range(6))
    import_items(job=job, stream=io.StringIO("external_id,text,gold\n" + rows), filename="i.csv", actor=actor)
    hit_services.build_hits(job=job, open_now=False, rng=random.Random(5))
    hits = list(Hit.objects.filter(job=job).prefetch_related("hit_items__item"))
    assert {len(h.hit_items.all()) for h in hits} == {4}
    assert all(h.gold_slots == 0 and not h.is_gold for h in hits)
    places = [hi.position for h in hits for hi in h.hit_items.all() if hi.item.is_gold]
    assert len(set(places)) >= 3
    ordinary = [hi.item_id for h in hits for hi in h.hit_items.all() if not hi.item.is_gold]
    assert sorted(ordinary) == sorted(Item.objects.filter(job=job, is_gold=False).values_list("pk", flat=True))


def test_a_single_item_job_keeps_its_gold_hits(actor):
    job = _job(actor, items_per_hit=1, gold_boost_rate=0.0)
    assert Hit.objects.filter(job=job, is_gold=True).count() == 30
    assert not Hit.objects.filter(job=job, gold_slots__gt=0).exists()


def test_a_hit_whose_gold_places_nobody_can_fill_gives_them_up_instead_of_staying_open(actor, make_worker):
    job = _job(actor, regular=4, gold=2, redundancy=1)
    # Every Hit asks for more gold places than the whole gold set has.
    Hit.objects.filter(job=job, is_gold=False).update(gold_slots=3)
    worker = make_worker()
    lease = assign_next_hit(job=job, worker=worker, rng=random.Random(1))
    hit = Hit.objects.get(pk=lease.hit_id)
    assert hit.gold_slots == 2  # what this worker's unseen gold can fill
    page = list_page_items(lease)
    assert len(page) == HitItem.objects.filter(hit=hit).count() + 2
    assert AssignmentGoldItem.objects.filter(assignment=lease).count() == 2
