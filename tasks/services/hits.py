"""Building Hits from a job's items."""

from __future__ import annotations

import uuid
from itertools import islice

from django.db import connection, transaction
from django.db.models import Exists, IntegerField, Min, OuterRef, Subquery
from django.db.models.functions import Cast, Round
from django.utils import timezone

from tasks.models import Hit, HitItem, HitState, Item, Job, Prediction
from tasks.services.bulk import bulk_insert

CHUNK = 20000
# A gold Hit is offered to every worker once; its "wanted" count is only a ceiling.
GOLD_HIT_CAPACITY = 30000
_HIT_COLUMNS = [
    "id",
    "uuid",
    "job_id",
    "state",
    "assignments_wanted",
    "slots_taken",
    "assignments_submitted",
    "priority",
    "is_gold",
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


def _create_hits(job: Job, count: int, state: str, *, gold: bool = False) -> list[int]:
    now = timezone.now()
    wanted = GOLD_HIT_CAPACITY if gold else job.answers_per_hit
    if connection.vendor == "postgresql":
        ids = _allocate_ids(Hit, count)
        bulk_insert(
            Hit,
            _HIT_COLUMNS,
            ((pk, uuid.uuid4(), job.pk, state, wanted, 0, 0, 0, gold, job.marketplace, now) for pk in ids),
        )
        return ids
    hits = Hit.objects.bulk_create(
        [
            Hit(
                uuid=uuid.uuid4(),
                job=job,
                state=state,
                assignments_wanted=wanted,
                is_gold=gold,
                marketplace=job.marketplace,
                created_at=now,
            )
            for _ in range(count)
        ],
        batch_size=5000,
    )
    return [hit.pk for hit in hits]


def build_hits(*, job: Job, open_now: bool) -> int:
    """Group the job's items that are in no Hit yet into Hits of ``job.items_per_hit`` items.

    Gold items get a Hit each, which every worker may get once (``Hit.is_gold``). Set-based: item ids
    are read in one query, Hits and their item links written in bulk (COPY with pre-allocated ids on
    PostgreSQL). Returns the number of Hits created.
    """
    state = HitState.OPEN if open_now else HitState.DRAFT
    pending = Item.objects.filter(job=job, hit_items__isnull=True).order_by("id")
    with transaction.atomic():
        created = _build(
            job, list(pending.filter(is_gold=False).values_list("id", flat=True)), job.items_per_hit, state
        )
        if created:
            # Predictions imported before these Hits existed still put the least certain items first.
            model_name = job.prelabel_model or (
                Prediction.objects.filter(job=job).order_by("-created_at").values_list("model_name", flat=True).first()
            )
            if model_name:
                prioritise_hits_by_model(job, model_name)
        created += _build(job, list(pending.filter(is_gold=True).values_list("id", flat=True)), 1, state, gold=True)
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


def _build(job: Job, all_ids: list[int], per_hit: int, state: str, *, gold: bool = False) -> int:
    created = 0
    item_ids = iter(all_ids)
    while ids := list(islice(item_ids, CHUNK * per_hit)):
        groups = [ids[i : i + per_hit] for i in range(0, len(ids), per_hit)]
        hit_ids = _create_hits(job, len(groups), state, gold=gold)
        bulk_insert(
            HitItem,
            ["hit_id", "item_id", "position"],
            (
                (hit_id, item_id, pos)
                for hit_id, group in zip(hit_ids, groups, strict=True)
                for pos, item_id in enumerate(group)
            ),
        )
        created += len(groups)
    return created


def build_gold_hits(*, job: Job, item_ids: list[int], open_now: bool) -> int:
    """A gold Hit for each of ``item_ids`` (gold items promoted after their own Hit was built)."""
    state = HitState.OPEN if open_now else HitState.DRAFT
    with transaction.atomic():
        return _build(job, item_ids, 1, state, gold=True)
