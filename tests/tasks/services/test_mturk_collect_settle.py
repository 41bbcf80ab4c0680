"""The first collect of work MTurk approved on its own settles the HITs' committed slots set-based
(``mturk_escrow.settle_approved_slots``): its query count does not grow with the number of approvals, and it
leaves exactly the ledger rows, reservations, slot states and audit events the one-approval-at-a-time settling
(kept below as the reference, ``_settle_one_by_one``) left, compared field by field."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.db import connection, transaction
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from tasks.models import (
    Assignment,
    AssignmentState,
    BudgetReservation,
    CostEntry,
    CostKind,
    CostStatus,
    Hit,
    Job,
    JobCostTally,
)
from tasks.services.ledger import assignment_cost_key, record_cost, reverse_cost, reverse_costs
from tasks.services.mturk_collect import collect_mturk_hits, collect_mturk_work
from tasks.services.mturk_common import ledger_key
from tasks.services.mturk_escrow import slot_released_at_rejection
from tasks.services.mturk_review import book_approval_charges_in_bulk
from tests.factories import JobFactory
from tests.marketplaces.mturk_standin import MTurkStandIn
from tests.tasks.services.mturk_helpers import ACTOR, published_mturk_job
from workforce.marketplaces.mturk import MTurkMarketplace
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
SETTLE = "tasks.services.mturk_review.settle_approved_slots"


def _settle_one_by_one(assignments: Sequence[Assignment]) -> int:
    """The settling as it was before it was set-based (``mturk_review._settle_slot``, called per assignment)."""
    for assignment in assignments:
        hit = Hit.objects.select_for_update().get(pk=assignment.hit_id)
        if slot_released_at_rejection(assignment):
            continue
        prefix = ledger_key("hit", hit.uuid, "slot") + ":"
        reward = (
            CostEntry.objects.filter(
                hit_id=hit.pk,
                kind=CostKind.REWARD,
                status=CostStatus.COMMITTED,
                idempotency_key__startswith=prefix,
                reversed_by__isnull=True,
            )
            .order_by("id")
            .first()
        )
        if reward is None:
            continue
        fee_key = reward.idempotency_key.rsplit(":", 1)[0] + f":{CostKind.MARKETPLACE_FEE}"
        memo = f"settled by the approval of assignment {assignment.external_id}"
        reverse_cost(entry=reward, idempotency_key=assignment_cost_key(assignment.pk, "settle-reward"), memo=memo)
        fee = CostEntry.objects.filter(idempotency_key=fee_key, reversed_by__isnull=True).first()
        if fee is not None:
            reverse_cost(entry=fee, idempotency_key=assignment_cost_key(assignment.pk, "settle-fee"), memo=memo)
    return 0


def _work_on(standin: MTurkStandIn, hit: Hit, statuses: Sequence[str], first_worker: int = 0) -> None:
    """One worker a status: each accepts ``hit`` on the stand-in and submits; MTurk then sets the status."""
    item = hit.items.get().external_id
    for n, status in enumerate(statuses, start=first_worker):
        external = standin.state.accept(str(hit.external_id), f"AW{n}")
        standin.state.external_submit([("assignmentId", external), (f"item:{item}", "pos")])
        standin.state.assignments[external]["AssignmentStatus"] = status


def _mixed_work(mturk: MTurkMarketplace, standin: MTurkStandIn, n: int) -> None:
    """Two jobs: one whose first HIT has ``n`` approvals and whose second has ``n - 2`` approvals, a rejection
    and unreviewed work, with 3 of its slots given back before (more approvals than open slots); the other with
    one HIT of ``n`` approvals."""
    job = published_mturk_job(mturk, 2, redundancy=n)
    first, second = Hit.objects.filter(job=job).order_by("pk")
    _work_on(standin, first, ["Approved"] * n)
    _work_on(standin, second, ["Approved"] * (n - 2) + ["Rejected", "Submitted"], first_worker=n)
    slots = CostEntry.objects.filter(hit=second, kind=CostKind.REWARD, status=CostStatus.COMMITTED).order_by("id")
    for k, slot in enumerate(slots[:3]):
        reverse_cost(entry=slot, idempotency_key=f"test:given-back:{k}", memo="given back")
    other = Hit.objects.get(job=published_mturk_job(mturk, 1, redundancy=n))
    _work_on(standin, other, ["Approved"] * n, first_worker=2 * n)


def _snapshot() -> dict[str, Any]:
    """Everything the collect may write, ids that differ between two runs replaced by MTurk's ids (rows made by
    the run: assignments, workers) and creation times left out; rows in the order they were written."""
    assignments: dict[int | None, Any] = dict(Assignment.objects.values_list("pk", "external_id"))
    workers: dict[int | None, Any] = dict(Assignment.objects.values_list("worker_id", "worker__external_id"))

    def norm(text: Any) -> str:
        text = text if isinstance(text, str) else json.dumps(text, sort_keys=True)
        return re.sub(r"assignment:(\d+):", lambda m: f"assignment:{assignments[int(m[1])]}:", text)

    return {
        "ledger": [
            (
                norm(e.idempotency_key),
                e.job_id,
                e.hit_id,
                assignments.get(e.assignment_id),
                workers.get(e.worker_id),
                e.marketplace,
                e.kind,
                e.status,
                e.amount,
                e.currency,
                e.reference,
                e.memo,
                norm(e.reverses.idempotency_key) if e.reverses else None,
            )
            for e in CostEntry.objects.select_related("reverses").order_by("id")
        ],
        "reservations": [
            (norm(r.key), r.job_id, r.amount, r.month, r.reason) for r in BudgetReservation.objects.order_by("id")
        ],
        "jobs": list(Job.objects.order_by("pk").values_list("pk", "state", "budget_reserved")),
        "tallies": list(JobCostTally.objects.values("job_id").annotate(total=Sum("amount")).order_by("job_id")),
        "hits": list(
            Hit.objects.order_by("pk").values_list(
                "pk", "state", "assignments_wanted", "slots_taken", "assignments_submitted"
            )
        ),
        "assignments": sorted(
            Assignment.objects.values_list("external_id", "state", "hit_id", "worker__external_id", "reward")
        ),
        "audit": [
            (
                e.actor_kind,
                e.actor_label,
                e.action,
                e.object_type,
                assignments[int(e.object_id)] if e.object_type == "assignment" else e.object_id,
                norm(e.before),
                norm(e.after),
                e.reason,
            )
            for e in AuditEvent.objects.order_by("id")
        ],
    }


def _outcome(run: Callable[[], object], *, one_by_one: bool) -> dict[str, Any]:
    """The state ``run`` leaves, settling set-based or (``one_by_one``) as before; rolled back after."""
    with transaction.atomic():
        if one_by_one:
            with mock.patch(SETTLE, _settle_one_by_one):
                run()
        else:
            run()
        state = _snapshot()
        transaction.set_rollback(True)
    return state


@pytest.mark.parametrize("n", [4, 12])
def test_a_first_collect_leaves_what_settling_one_approval_at_a_time_left(
    mturk: MTurkMarketplace, standin: MTurkStandIn, n: int
) -> None:
    _mixed_work(mturk, standin, n)

    def collect() -> None:
        collect_mturk_work(actor=ACTOR, connector=mturk)

    before = _outcome(collect, one_by_one=True)
    assert _outcome(collect, one_by_one=False) == before
    collect()
    settled = CostEntry.objects.filter(idempotency_key__contains=":settle-")
    assert settled.count() == 2 * (n + (n - 3) + n)  # a reward and a fee per slot; one approval found none
    assert CostEntry.objects.filter(idempotency_key__contains=":release:").count() == 0  # no slot left for it
    assert BudgetReservation.objects.filter(key__endswith=":release").count() == 1  # its unit cost, released


def test_approvals_settle_in_the_order_given_and_an_overridden_rejection_settles_none(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    hit = Hit.objects.get(job=published_mturk_job(mturk, 1, redundancy=5))
    _work_on(standin, hit, ["Submitted", "Rejected", "Submitted", "Submitted", "Submitted"])
    collect_mturk_hits(external_hit_ids=[str(hit.external_id)], actor=ACTOR, connector=mturk)
    rejected = Assignment.objects.get(hit=hit, state=AssignmentState.REJECTED)
    assert slot_released_at_rejection(rejected)
    Assignment.objects.filter(hit=hit).update(state=AssignmentState.APPROVED)  # the rejection overridden
    approvals = list(Assignment.objects.filter(hit=hit).select_related("hit", "job").order_by("-pk"))

    def book() -> None:
        assert book_approval_charges_in_bulk(assignments=approvals) == 10

    assert _outcome(book, one_by_one=False) == _outcome(book, one_by_one=True)
    book()
    settled = CostEntry.objects.filter(idempotency_key__endswith=":settle-reward").order_by("id")
    assert [(s.idempotency_key, s.reverses and s.reverses.idempotency_key) for s in settled] == [
        (assignment_cost_key(a.pk, "settle-reward"), f"mturk:hit:{hit.uuid}:slot:{slot}:reward")
        for slot, a in enumerate(a for a in approvals if a.pk != rejected.pk)
    ]


def _first_collect_queries(mturk: MTurkMarketplace, standin: MTurkStandIn, workers: int) -> int:
    hit = Hit.objects.get(job=published_mturk_job(mturk, 1, redundancy=workers))
    _work_on(standin, hit, ["Approved"] * workers)
    with CaptureQueriesContext(connection) as queries:
        result = collect_mturk_hits(external_hit_ids=[str(hit.external_id)], actor=ACTOR, connector=mturk)
    assert result.charges_booked == 2 * workers
    assert CostEntry.objects.filter(hit=hit, idempotency_key__endswith=":settle-fee").count() == workers
    return len(queries.captured_queries)


def test_a_first_collect_settles_its_approvals_in_queries_that_do_not_grow_with_them(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    first_5 = _first_collect_queries(mturk, standin, 5)
    first_30 = _first_collect_queries(mturk, standin, 30)  # another job's HIT, polled on its own
    assert first_30 <= first_5, (first_5, first_30)


def test_reversals_written_in_bulk_leave_an_entry_reversed_meanwhile_to_its_reversal() -> None:
    job = JobFactory()
    a, b = (
        record_cost(job=job, kind=CostKind.REWARD, amount=Decimal("0.05"), idempotency_key=k, marketplace="mturk")[0]
        for k in ("a", "b")
    )
    reverse_cost(entry=a, idempotency_key="a:first", memo="first")  # after the caller read ``a`` unreversed
    assert reverse_costs([(a, "a:again", "again"), (b, "b:settle", "settle")]) == 1
    assert sorted(CostEntry.objects.filter(kind=CostKind.REVERSAL).values_list("idempotency_key", "amount")) == [
        ("a:first", Decimal("-0.05")),
        ("b:settle", Decimal("-0.05")),
    ]
