"""Shared set-up for the MTurk service tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import Sum

from tasks.models import CostEntry, Job, JobState
from tasks.services.publishing import publish_job
from tests.factories import ItemFactory, JobFactory
from workforce.audit import Actor
from workforce.marketplaces.mturk import MTurkMarketplace

ACTOR = Actor.system("mturk tests")


def mturk_job(items: int = 3, **fields: Any) -> Job:
    fields.setdefault("reward", Decimal("0.05"))
    job = JobFactory(marketplace="mturk", state=JobState.DRAFT, **fields)
    for n in range(items):
        ItemFactory(job=job, external_id=f"t{n}")
    return job


def published_mturk_job(connector: MTurkMarketplace, items: int = 3, **fields: Any) -> Job:
    """A job published to the stand-in (its Hits created there) through the real services."""
    from tasks.services.mturk_publishing import publish_mturk_hits

    job = publish_job(job=mturk_job(items, **fields), actor=ACTOR)
    publish_mturk_hits(job=job, actor=ACTOR, connector=connector)
    return job


def ledger_total(**filters: Any) -> Decimal:
    return CostEntry.objects.filter(**filters).aggregate(total=Sum("amount"))["total"] or Decimal("0")


def submitted_mturk_assignments(mturk: MTurkMarketplace, standin: Any, *, workers: int) -> list[Any]:
    """A one-item job published to the stand-in, ``workers`` workers' answers submitted there and collected:
    their assignments, in order."""
    from tasks.models import Assignment, Hit
    from tasks.services.mturk_collect import collect_mturk_work

    job = published_mturk_job(mturk, 1)
    hit = Hit.objects.get(job=job)
    item = hit.items.get().external_id
    ids = []
    for n in range(workers):
        external = standin.state.accept(str(hit.external_id), f"AW{n}")
        standin.state.external_submit([("assignmentId", external), (f"item:{item}", "pos")])
        ids.append(external)
    collect_mturk_work(actor=ACTOR, connector=mturk)
    return [Assignment.objects.get(external_id=i) for i in ids]
