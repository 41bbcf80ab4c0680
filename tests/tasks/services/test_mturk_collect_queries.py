"""Collecting MTurk work MTurk approved on its own is set-based: a repeat collect reads the ledger keys of the
batch's approved assignments at once, so its query count does not grow with the number of assignments, and
the ledger it leaves (a reward and a fee per assignment, each settling one committed slot) is the same."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tasks.models import Assignment, AssignmentState, CostEntry, CostKind, CostStatus, Hit
from tasks.services.ledger import CostLine, LedgerConflict, assignment_cost_key, record_costs_once
from tasks.services.mturk_collect import CollectResult, collect_mturk_hits, collect_mturk_work
from tests.marketplaces.mturk_standin import MTurkStandIn
from tests.tasks.services.mturk_helpers import ACTOR, published_mturk_job
from workforce.marketplaces.mturk import MTurkMarketplace
from workforce.marketplaces.mturk_fees import assignment_fee
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db

REWARD = Decimal("0.05")


def _approved_on_mturk(mturk: MTurkMarketplace, standin: MTurkStandIn, workers: int) -> Hit:
    """A one-item job wanting ``workers`` assignments, each submitted on the stand-in and approved there."""
    job = published_mturk_job(mturk, 1, redundancy=workers)
    hit = Hit.objects.get(job=job)
    item = hit.items.get().external_id
    for n in range(workers):
        external = standin.state.accept(str(hit.external_id), f"AW{n}")
        standin.state.external_submit([("assignmentId", external), (f"item:{item}", "pos")])
        standin.state.assignments[external]["AssignmentStatus"] = "Approved"
    return hit


def _collect(mturk: MTurkMarketplace, hit: Hit | None = None) -> tuple[CollectResult, int]:
    """``collect_mturk_work``, or with ``hit`` only that HIT polled (``collect_mturk_hits``); and its queries."""
    with CaptureQueriesContext(connection) as queries:
        if hit is None:
            result = collect_mturk_work(actor=ACTOR, connector=mturk)
        else:
            result = collect_mturk_hits(external_hit_ids=[str(hit.external_id)], actor=ACTOR, connector=mturk)
    return result, len(queries.captured_queries)


def _repeat_collect_queries(mturk: MTurkMarketplace, standin: MTurkStandIn, workers: int) -> int:
    hit = _approved_on_mturk(mturk, standin, workers)
    first, _ = _collect(mturk, hit)
    assert first.charges_booked == 2 * workers
    again, queries = _collect(mturk, hit)
    assert again.charges_booked == 0
    return queries


def _ledger() -> list[tuple[Any, ...]]:
    return sorted(
        CostEntry.objects.values_list(
            "idempotency_key",
            "kind",
            "status",
            "amount",
            "currency",
            "hit_id",
            "assignment_id",
            "worker_id",
            "reference",
            "memo",
            "reverses__idempotency_key",
        )
    )


@pytest.mark.parametrize("workers", [5, 30])
def test_collect_books_each_approved_assignment_once_with_the_same_rows(
    mturk: MTurkMarketplace, standin: MTurkStandIn, workers: int
) -> None:
    hit = _approved_on_mturk(mturk, standin, workers)
    result, _ = _collect(mturk)
    assert result.charges_booked == 2 * workers
    fee = assignment_fee(REWARD, assignments_per_hit=workers, masters=False)
    assignments = list(Assignment.objects.filter(hit=hit).order_by("pk"))
    assert [a.state for a in assignments] == [AssignmentState.APPROVED] * workers
    charged = CostEntry.objects.filter(status=CostStatus.CHARGED).exclude(kind=CostKind.REVERSAL)
    assert sorted(
        charged.values_list("idempotency_key", "kind", "amount", "assignment_id", "worker_id", "reference")
    ) == sorted(
        (assignment_cost_key(a.pk, part), kind, amount, a.pk, a.worker_id, a.external_id)
        for a in assignments
        for part, kind, amount in (("reward", CostKind.REWARD, REWARD), ("fee", CostKind.MARKETPLACE_FEE, fee))
    )
    assert all(e.hit_id == hit.pk and e.marketplace == "mturk" and e.currency == "USD" for e in charged)
    # Each approval settles one committed slot (its reward and fee), the lowest open one first.
    settled = CostEntry.objects.filter(kind=CostKind.REVERSAL, idempotency_key__startswith="assignment:")
    assert sorted(settled.values_list("idempotency_key", "reverses__idempotency_key", "amount", "memo")) == sorted(
        (
            assignment_cost_key(a.pk, f"settle-{part}"),
            f"mturk:hit:{hit.uuid}:slot:{slot}:{kind}",
            -amount,
            f"settled by the approval of assignment {a.external_id}",
        )
        for slot, a in enumerate(assignments)
        for part, kind, amount in (("reward", CostKind.REWARD, REWARD), ("fee", CostKind.MARKETPLACE_FEE, fee))
    )
    open_slots = CostEntry.objects.filter(
        hit=hit, status=CostStatus.COMMITTED, kind=CostKind.REWARD, reversed_by__isnull=True
    )
    assert not open_slots.exists()

    ledger, events = _ledger(), AuditEvent.objects.count()
    again, _ = _collect(mturk)
    assert again.charges_booked == 0
    assert _ledger() == ledger
    assert AuditEvent.objects.count() == events


def test_a_repeat_collect_reads_the_ledger_once_per_batch_not_per_assignment(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    repeat_5 = _repeat_collect_queries(mturk, standin, 5)
    repeat_30 = _repeat_collect_queries(mturk, standin, 30)  # another job's HIT, polled on its own
    assert repeat_30 <= repeat_5 + 3, (repeat_5, repeat_30)


def test_a_key_another_transaction_booked_meanwhile_is_left_to_it(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    hit = _approved_on_mturk(mturk, standin, 1)
    line = CostLine(job_id=hit.job_id, kind=CostKind.REWARD, amount=REWARD, idempotency_key="k:a", marketplace="mturk")
    other = replace(line, idempotency_key="k:b")
    record_costs_once([line])  # booked by "another transaction" after this one read the keys (none)
    real_filter = CostEntry.objects.filter
    stale: list[bool] = []  # the next read of the booked keys misses the other transaction's row

    def read(**lookups: Any) -> Any:
        if stale and "idempotency_key__in" in lookups:
            stale.pop()
            return CostEntry.objects.none()
        return real_filter(**lookups)

    with mock.patch.object(CostEntry.objects, "filter", side_effect=read):
        stale.append(True)
        assert record_costs_once([line, other]) == [other]
        stale.append(True)
        with pytest.raises(LedgerConflict):
            record_costs_once([replace(line, amount=Decimal("0.07"))])
        assert not stale
    assert sorted(
        CostEntry.objects.filter(idempotency_key__startswith="k:").values_list("idempotency_key", "amount")
    ) == [
        ("k:a", REWARD),
        ("k:b", REWARD),
    ]
