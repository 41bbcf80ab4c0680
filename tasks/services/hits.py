"""Building Hits from a job's items."""

from __future__ import annotations

import random
import uuid

from django.db import connection, transaction
from django.db.models import Exists, IntegerField, Min, OuterRef, QuerySet, Subquery
from django.db.models.functions import Cast, Round
from django.utils import timezone

from qualification.gold_placement import draw_gold_slots, place_on_page
from tasks.models import Hit, HitItem, HitState, Item, Job, Prediction
from tasks.services.bulk import bulk_insert
from workforce.models import Marketplace

CHUNK = 20000
# A gold Hit is offered to every worker once; its "wanted" count is only a ceiling.
GOLD_HIT_CAPACITY = 30000
_random = random.SystemRandom()
_HIT_COLUMNS = [
    "id",
    "uuid",
    "job_id",
    "state",
    "assignments_wanted",
    "assignments_published",
    "slots_taken",
    "assignments_submitted",
    "priority",
    "is_gold",
    "gold_slots",
    "marketplace",
    "created_at",
]


def _allocate_ids(model: type[Hit], count: int) -> list[int]:
    """Reserve ``count`` primary keys from the table's sequence in one query (PostgreSQL)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, count],
        )
        return [row[0] for row in cursor.fetchall()]


def _create_hits(job: Job, slots: list[int], state: str, *, gold: bool = False) -> list[int]:
    """One Hit per entry of ``slots`` (its gold places); returns their ids in the same order."""
    now = timezone.now()
    wanted = GOLD_HIT_CAPACITY if gold else job.answers_per_hit
    if connection.vendor == "postgresql":
        ids = _allocate_ids(Hit, len(slots))
        bulk_insert(
            Hit,
            _HIT_COLUMNS,
            (
                (pk, uuid.uuid4(), job.pk, state, wanted, wanted, 0, 0, 0, gold, k, job.marketplace, now)
                for pk, k in zip(ids, slots, strict=True)
            ),
        )
        return ids
    hits = Hit.objects.bulk_create(
        [
            Hit(
                uuid=uuid.uuid4(),
                job=job,
                state=state,
                assignments_wanted=wanted,
                assignments_published=wanted,
                is_gold=gold,
                gold_slots=k,
                marketplace=job.marketplace,
                created_at=now,
            )
            for k in slots
        ],
        batch_size=5000,
    )
    return [hit.pk for hit in hits]


# A group of items for one Hit: its items in page order and the gold places left for hand-out.
Group = tuple[list[int], int]


def build_hits(*, job: Job, open_now: bool, rng: random.Random | None = None) -> int:
    """Group the job's items that are in no Hit yet into Hits of ``job.items_per_hit`` items.

    One item per Hit: each gold item gets a Hit of its own, which every worker may get once
    (``Hit.is_gold``). Several items per Hit (``qualification.gold_placement``): gold is mixed into
    ordinary pages, which always show ``items_per_hit`` items. In the internal pool a Hit keeps
    ``gold_slots`` places that the pool fills per worker at hand-out with gold they have not seen
    (``AssignmentGoldItem``), and gold page Hits (all places gold) serve a boosted gold rate; on other
    marketplaces, whose Hits are fixed when published, the gold items are placed in the Hits here.
    Set-based: item ids are read in one query, Hits and their item links written in bulk (COPY with
    pre-allocated ids on PostgreSQL). Returns the number of Hits created.
    """
    rng = rng or _random
    state = HitState.OPEN if open_now else HitState.DRAFT
    pending = Item.objects.filter(job=job, hit_items__isnull=True).order_by("id")
    with transaction.atomic():
        regular = list(pending.filter(is_gold=False).values_list("id", flat=True))
        if job.items_per_hit <= 1:
            created = _build(job, [([i], 0) for i in regular], state)
            gold = list(pending.filter(is_gold=True).values_list("id", flat=True))
            created += _build(job, [([i], 0) for i in gold], state, gold=True)
        else:
            gold = list(Item.objects.filter(job=job, is_gold=True).order_by("id").values_list("id", flat=True))
            groups = _mixed_groups(job, regular, gold_items=len(gold), rng=rng)
            if job.marketplace != Marketplace.INTERNAL:
                created = _build(job, _with_gold_placed(groups, gold, rng), state)
            else:
                created = _build(job, groups, state) + _top_up_gold_pages(job, gold_items=len(gold), state=state)
        if created:
            # Predictions imported before these Hits existed still put the least certain items first.
            model_name = job.prelabel_model or (
                Prediction.objects.filter(job=job).order_by("-created_at").values_list("model_name", flat=True).first()
            )
            if model_name:
                prioritise_hits_by_model(job, model_name)
    return created


def prioritise_hits_by_model(job: Job, model_name: str) -> int:
    """Open and draft Hits get the priority of their least certain item under ``model_name`` (-100 for a
    score of 0, -1 for 0.99; set-based, one UPDATE). Returns the Hits changed."""
    scores = Prediction.objects.filter(model_name=model_name, item__hit_items__hit=OuterRef("pk"))
    lowest = (
        scores.values("item__hit_items__hit")
        .annotate(priority=Cast(Round(Min("score") * 100), IntegerField()) - 100)
        .values("priority")
    )
    return Hit.objects.filter(Exists(scores), job=job, is_gold=False, state__in=[HitState.DRAFT, HitState.OPEN]).update(
        priority=Subquery(lowest[:1])
    )


def rankable_hits(job_id: int) -> QuerySet[Hit]:
    """The Hits to lock (in id order, before the job's row) around ``prioritise_hits_by_model``: it changes draft
    and open ones, and the others but cancelled ones are locked too, so that none becomes one meanwhile."""
    return Hit.objects.filter(job_id=job_id, is_gold=False).exclude(state=HitState.CANCELLED)


def _mixed_groups(job: Job, regular: list[int], *, gold_items: int, rng: random.Random) -> list[Group]:
    """Split ``regular`` into Hits that leave room for gold, so every page shows ``items_per_hit`` items."""
    size = job.items_per_hit
    groups: list[Group] = []
    start = 0
    while start < len(regular):
        slots = draw_gold_slots(page_size=size, rate=job.gold_rate, gold_items=gold_items, rng=rng)
        own = regular[start : start + size - slots]
        start += len(own)
        if len(own) < size - slots:  # the last Hit: fill its page with gold where the gold set allows
            slots = min(size - len(own), gold_items) if job.gold_rate > 0 else 0
        groups.append((own, slots))
    return groups


def _with_gold_placed(groups: list[Group], gold: list[int], rng: random.Random) -> list[Group]:
    """Hits fixed at publish (MTurk): each Hit's gold places filled now, at random places, going round the
    shuffled gold set (a gold item is in several Hits when there are more places than gold items)."""
    order = rng.sample(gold, len(gold))
    turn = 0
    placed: list[Group] = []
    for own, slots in groups:
        picks = [order[(turn + k) % len(order)] for k in range(slots)]
        turn += slots
        places = sorted(rng.sample(range(len(own) + slots), slots))
        placed.append((place_on_page(own, list(zip(places, picks, strict=True))), 0))
    return placed


def _top_up_gold_pages(job: Job, *, gold_items: int, state: str) -> int:
    """Gold page Hits (every place gold) for a boosted gold rate: as many as a worker could fill from the
    gold set, each one a worker may get once."""
    if job.gold_boost_rate <= 0:
        return 0
    missing = gold_items // job.items_per_hit - Hit.objects.filter(job=job, is_gold=True).count()
    if missing <= 0:
        return 0
    _create_hits(job, [job.items_per_hit] * missing, state, gold=True)
    return missing


def _build(job: Job, groups: list[Group], state: str, *, gold: bool = False) -> int:
    for start in range(0, len(groups), CHUNK):
        chunk = groups[start : start + CHUNK]
        hit_ids = _create_hits(job, [slots for _, slots in chunk], state, gold=gold)
        bulk_insert(
            HitItem,
            ["hit_id", "item_id", "position"],
            (
                (hit_id, item_id, pos)
                for hit_id, (ids, _) in zip(hit_ids, chunk, strict=True)
                for pos, item_id in enumerate(ids)
            ),
        )
    return len(groups)


def build_gold_hits(*, job: Job, item_ids: list[int], open_now: bool) -> int:
    """Hits for gold items promoted after their own Hit was built: a gold Hit each when a Hit shows one
    item; with several items, ordinary pages take them from the gold set at hand-out (and gold pages are
    topped up)."""
    state = HitState.OPEN if open_now else HitState.DRAFT
    with transaction.atomic():
        if job.items_per_hit <= 1:
            return _build(job, [([i], 0) for i in item_ids], state, gold=True)
        if job.marketplace != Marketplace.INTERNAL:
            return 0
        gold_items = Item.objects.filter(job=job, is_gold=True).count()
        return _top_up_gold_pages(job, gold_items=gold_items, state=state)
