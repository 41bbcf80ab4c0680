"""Collecting work MTurk reports as rejected gives the slots' money back set-based
(``mturk_escrow.release_rejected_slots``): its query count does not grow with the number of rejections, and it
leaves exactly the ledger rows, reservations (month rows included), slot states and audit events the
one-rejection-at-a-time release (kept below as the reference, ``_release_one_by_one``) left, compared field by
field."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from datetime import timedelta
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tasks.models import (
    Assignment,
    BudgetReservation,
    CostEntry,
    CostKind,
    CostStatus,
    Hit,
    Job,
    JobCostTally,
    MonthlyBudget,
)
from tasks.services.budget import month_of, release_rejected_work
from tasks.services.ledger import assignment_cost_key, record_cost, reverse_cost, reverse_costs_each
from tasks.services.mturk_collect import CollectResult, collect_mturk_hits, collect_mturk_work
from tasks.services.mturk_escrow import rejected_slot_key, release_rejected_slot
from tests.factories import JobFactory
from tests.marketplaces.mturk_standin import MTurkStandIn
from tests.tasks.services.mturk_helpers import ACTOR, published_mturk_job
from tests.tasks.services.test_mturk_collect_settle import _snapshot, _work_on
from workforce.audit import Actor
from workforce.marketplaces.mturk import MTurkMarketplace

pytestmark = pytest.mark.django_db
RELEASE = "tasks.services.mturk_collect.release_rejected_slots"


def _release_one_by_one(*, job: Job, assignments: Sequence[Assignment], actor: Actor) -> int:
    """The release as it was before it was set-based (``mturk_collect._release_rejected``): the keys used before
    read at once, then ``release_rejected_slot`` per assignment."""
    done = set(
        CostEntry.objects.filter(idempotency_key__in=[rejected_slot_key(a) for a in assignments]).values_list(
            "idempotency_key", flat=True
        )
    )
    done |= set(
        BudgetReservation.objects.filter(
            key__in=[assignment_cost_key(a.pk, "release") for a in assignments]
        ).values_list("key", flat=True)
    )
    released = 0
    for assignment in assignments:
        if not {rejected_slot_key(assignment), assignment_cost_key(assignment.pk, "release")} & done:
            released += bool(release_rejected_slot(assignment=assignment, actor=actor))
    return released


def _set_status(standin: MTurkStandIn, worker: str, status: str) -> None:
    [external] = [k for k, a in standin.state.assignments.items() if a["WorkerId"] == worker]
    standin.state.assignments[external]["AssignmentStatus"] = status


def _split_months(job: Job, held_last_month: Decimal) -> None:
    """Move all but ``held_last_month`` of the job's reservation to this month (with month rows for both), so
    a release that takes more than last month still holds spans the two months (``key`` and ``key@YYYY-MM``)."""
    this = month_of(timezone.now())
    last = month_of(timezone.now().replace(day=1) - timedelta(days=1))
    BudgetReservation.objects.filter(job=job).update(month=last)
    moved = job.budget_reserved - held_last_month
    now = timezone.now()
    BudgetReservation.objects.create(job=job, amount=-moved, key="test:moved", month=last, created_at=now)
    BudgetReservation.objects.create(job=job, amount=moved, key="test:moved-back", month=this, created_at=now)
    MonthlyBudget.objects.create(month=last, currency="USD", cap=Decimal("1000"), reserved=held_last_month)
    MonthlyBudget.objects.create(month=this, currency="USD", cap=Decimal("1000"), reserved=moved)


def _rejected_work(mturk: MTurkMarketplace, standin: MTurkStandIn, n: int) -> None:
    """Two jobs. The first: one HIT with a rejection collected before, a rejection whose reservation was given
    back elsewhere (``release_rejected_work``), ``n - 4`` more rejections, an approval and unreviewed work; one
    HIT of ``n`` rejections with 3 of its slots given back before (more rejections than open slots); its
    reservation split over two months. The second: one HIT of ``n - 1`` rejections, reserving 0.03 less than
    it has spent (the first release is capped)."""
    job = published_mturk_job(mturk, 2, redundancy=n)
    first, second = Hit.objects.filter(job=job).order_by("pk")
    _work_on(standin, first, ["Submitted", "Rejected", "Submitted"])
    collect_mturk_hits(external_hit_ids=[str(first.external_id)], actor=ACTOR, connector=mturk)
    release_rejected_work(assignment=Assignment.objects.get(hit=first, worker__external_id="AW0"), actor=ACTOR)
    _set_status(standin, "AW0", "Rejected")
    _set_status(standin, "AW2", "Rejected")
    _work_on(standin, first, ["Rejected"] * (n - 4) + ["Approved"], first_worker=3)
    _work_on(standin, second, ["Rejected"] * n, first_worker=n)
    slots = CostEntry.objects.filter(hit=second, kind=CostKind.REWARD, status=CostStatus.COMMITTED).order_by("id")
    for k, slot in enumerate(slots[:3]):
        reverse_cost(entry=slot, idempotency_key=f"test:given-back:{k}", memo="given back")
    job.refresh_from_db()
    _split_months(job, Decimal("0.09"))
    other = published_mturk_job(mturk, 1, redundancy=n)
    _work_on(standin, Hit.objects.get(job=other), ["Rejected"] * (n - 1) + ["Submitted"], first_worker=2 * n)
    spent = JobCostTally.objects.filter(job=other).aggregate(total=Sum("amount"))["total"]
    Job.objects.filter(pk=other.pk).update(budget_reserved=Decimal(str(spent)) - Decimal("0.03"))


def _outcome(run: Callable[[], CollectResult], *, one_by_one: bool) -> tuple[dict[str, Any], int]:
    """The state ``run`` leaves (month rows included) and the slots it reports released, releasing set-based
    or (``one_by_one``) as before; rolled back after."""
    with transaction.atomic():
        if one_by_one:
            with mock.patch(RELEASE, _release_one_by_one):
                result = run()
        else:
            result = run()
        state = _snapshot()
        state["months"] = list(MonthlyBudget.objects.order_by("month").values_list("month", "currency", "reserved"))
        transaction.set_rollback(True)
    return state, result.slots_released


@pytest.mark.parametrize("n", [5, 12])
def test_a_collect_of_rejections_leaves_what_releasing_one_rejection_at_a_time_left(
    mturk: MTurkMarketplace, standin: MTurkStandIn, n: int
) -> None:
    _rejected_work(mturk, standin, n)

    def collect() -> CollectResult:
        return collect_mturk_work(actor=ACTOR, connector=mturk)

    before = _outcome(collect, one_by_one=True)
    assert _outcome(collect, one_by_one=False) == before
    result = collect()
    assert result.slots_released == before[1] == (n - 3) + (n - 3) + 3 + (n - 1)  # 3 with their unit cost only
    released = CostEntry.objects.filter(idempotency_key__regex=r":release:(reward|fee)$")
    assert released.count() == 2 * (1 + (n - 3) + (n - 3) + (n - 1))  # a reward and a fee a slot (1 before)
    assert BudgetReservation.objects.filter(key__contains=":release@").exists()  # one release spans two months
    assert collect().slots_released == 0  # once


def _first_collect_queries(
    mturk: MTurkMarketplace, standin: MTurkStandIn, workers: int, *, one_by_one: bool = False
) -> int:
    hit = Hit.objects.get(job=published_mturk_job(mturk, 1, redundancy=workers))
    _work_on(standin, hit, ["Rejected"] * workers)
    patch = mock.patch(RELEASE, _release_one_by_one) if one_by_one else nullcontext()
    with patch, CaptureQueriesContext(connection) as queries:
        result = collect_mturk_hits(external_hit_ids=[str(hit.external_id)], actor=ACTOR, connector=mturk)
    assert result.slots_released == workers
    assert CostEntry.objects.filter(hit=hit, idempotency_key__endswith=":release:fee").count() == workers
    return len(queries.captured_queries)


def test_a_first_collect_releases_its_rejections_in_queries_that_do_not_grow_with_them(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    first_5 = _first_collect_queries(mturk, standin, 5)
    first_30 = _first_collect_queries(mturk, standin, 30)  # another job's HIT, polled on its own
    assert first_30 <= first_5, (first_5, first_30)


def test_reversals_written_in_bulk_say_which_were_written_now() -> None:
    job = JobFactory()
    a, b = (
        record_cost(job=job, kind=CostKind.REWARD, amount=Decimal("0.05"), idempotency_key=k, marketplace="mturk")[0]
        for k in ("a", "b")
    )
    assert reverse_costs_each([]) == []
    reverse_cost(entry=b, idempotency_key="b:first", memo="first")  # after the caller read ``b`` unreversed
    assert reverse_costs_each([(a, "a:release", "release"), (b, "b:again", "again")]) == [True, False]
    assert sorted(CostEntry.objects.filter(kind=CostKind.REVERSAL).values_list("idempotency_key", flat=True)) == [
        "a:release",
        "b:first",
    ]
