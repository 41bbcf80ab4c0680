"""Building Hits from a job's items."""

from __future__ import annotations

import uuid
from itertools import islice

from django.db import transaction
from django.utils import timezone

from tasks.models import Hit, HitItem, HitState, Item, Job
from tasks.services.bulk import bulk_insert

CHUNK = 5000


def build_hits(*, job: Job, open_now: bool) -> int:
    """Group the job's items that are in no Hit yet into Hits of ``job.items_per_hit`` items.

    Set-based: item ids are read in one query, Hits and their item links are written in bulk.
    Returns the number of Hits created.
    """
    per_hit = job.items_per_hit
    state = HitState.OPEN if open_now else HitState.DRAFT
    item_ids = (
        Item.objects.filter(job=job, hit_items__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)
        .iterator(chunk_size=CHUNK)
    )
    created = 0
    now = timezone.now()
    with transaction.atomic():
        while True:
            ids = list(islice(item_ids, CHUNK * per_hit))
            if not ids:
                break
            groups = [ids[i : i + per_hit] for i in range(0, len(ids), per_hit)]
            hits = Hit.objects.bulk_create(
                [
                    Hit(
                        uuid=uuid.uuid4(),
                        job=job,
                        state=state,
                        assignments_wanted=job.redundancy,
                        marketplace=job.marketplace,
                        created_at=now,
                    )
                    for _ in groups
                ],
                batch_size=CHUNK,
            )
            bulk_insert(
                HitItem,
                ["hit_id", "item_id", "position"],
                (
                    (hit.pk, item_id, pos)
                    for hit, group in zip(hits, groups, strict=True)
                    for pos, item_id in enumerate(group)
                ),
            )
            created += len(hits)
    return created
