"""Expiry passes racing approvals and rejections of the same expired HITs, on real PostgreSQL: every unfilled
slot is released once, and the ledger, the reservation and the stand-in's balance agree afterwards."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connections
from django.utils import timezone

from tasks.models import Assignment, CostEntry, CostKind, Hit, Job, MTurkHit
from tasks.services.budget import exact
from tasks.services.mturk_collect import collect_mturk_work
from tasks.services.mturk_escrow import release_unfilled_mturk_slots
from tasks.services.review import approve_assignment, reject_assignment
from tests.marketplaces.mturk_standin import MTurkStandIn
from tests.mturk_fixtures import standin_connector
from tests.tasks.services.mturk_helpers import ACTOR, ledger_total, published_mturk_job
from workforce.marketplaces.mturk import MTurkMarketplace

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs PostgreSQL; set DATABASE_URL=postgres://..."),
]

HITS = 4
PASSES = 6
SLOT = Decimal("0.06")


@pytest.mark.django_db(transaction=True)
def test_parallel_expiry_passes_and_reviews_release_each_unfilled_slot_once(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    job = published_mturk_job(mturk, HITS)  # four HITs of three assignments
    hits = list(Hit.objects.filter(job=job).order_by("pk"))
    for n, hit in enumerate(hits):
        external = standin.state.accept(str(hit.external_id), f"AW{n}")
        item = hit.items.get().external_id
        standin.state.external_submit([("assignmentId", external), (f"item:{item}", "pos")])
    collect_mturk_work(actor=ACTOR, connector=mturk)
    for hit in hits:
        standin.state.hits[str(hit.external_id)]["Expiration"] = time.time() - 1
    MTurkHit.objects.filter(hit__job=job).update(expires_at=timezone.now() - timedelta(seconds=1))
    submitted = list(Assignment.objects.filter(job=job).order_by("pk"))
    barrier = threading.Barrier(PASSES + 2)
    errors: list[BaseException] = []

    def run(work: Callable[[], object]) -> None:
        try:
            barrier.wait()
            work()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    def expiry_pass() -> None:
        release_unfilled_mturk_slots(actor=ACTOR, connector=standin_connector(standin.url))

    def approve_half() -> None:
        for assignment in submitted[::2]:
            approve_assignment(assignment=assignment, actor=ACTOR)

    def reject_half() -> None:
        for assignment in submitted[1::2]:
            reject_assignment(assignment=assignment, actor=ACTOR, feedback="Not what was asked")

    threads = [threading.Thread(target=run, args=(expiry_pass,)) for _ in range(PASSES)]
    threads += [threading.Thread(target=run, args=(approve_half,)), threading.Thread(target=run, args=(reject_half,))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors

    released = CostEntry.objects.filter(job=job, kind=CostKind.REVERSAL, idempotency_key__contains=":unfilled:")
    assert released.count() == HITS * 2 * 2  # two unfilled slots per HIT, a reward and a fee row each
    assert exact(ledger_total(job=job)) == SLOT * (HITS // 2)  # the approved half is paid, the rest given back
    assert exact(ledger_total()) == standin.state.total_charged()
    assert Job.objects.values_list("budget_reserved", flat=True).get(pk=job.pk) == SLOT * (HITS // 2)
    release_unfilled_mturk_slots(actor=ACTOR, connector=mturk)  # nothing is left open: nothing more happens
    assert released.count() == HITS * 2 * 2
