"""An MTurk results file that restates approvals as rejections has their charges reversed set-based
(``mturk_history_costs.reverse_rejected_assignment_costs``: the rows to reverse read in one query, the reversals
written in one insert): its query count does not grow with the number of rejections, and an import leaves
exactly the ledger rows, reservations, slot states and audit events the one-row-at-a-time reversal (kept below
as the reference, ``_reverse_one_by_one``) left, compared field by field."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from tasks.models import Assignment, AssignmentState, CostEntry, CostKind, CostStatus, Job
from tasks.services.ledger import reverse_cost
from tasks.services.mturk_history_costs import (
    _CHARGE_PARTS,
    IMPORTED_MEMO,
    ReversedCosts,
    _assignments,
    imported_memo,
    reverse_rejected_assignment_costs,
)
from tests.marketplaces.mturk_standin import MTurkStandIn
from tests.tasks.services.mturk_helpers import ACTOR
from tests.tasks.services.test_mturk_collect_settle import _snapshot
from tests.tasks.services.test_mturk_import_restated_reviews import T1, T2, _download, _import_live, _live_job
from tests.tasks.services.test_mturk_import_review_fixes import LATER, PAST, _csv, _import
from tests.tasks.services.test_mturk_import_review_fixes import _row as review_fixes_row
from workforce.audit import Actor, record_audit_event
from workforce.marketplaces.mturk import MTurkMarketplace

pytestmark = pytest.mark.django_db
REVERSE = "tasks.services.mturk_results.importer.reverse_rejected_assignment_costs"


def _reverse_one_by_one(*, job: Job, assignment_ids: Sequence[str], source: str, actor: Actor) -> ReversedCosts:
    """The reversal as it was before it was set-based: one ``reverse_cost`` per ledger row."""
    result = ReversedCosts()
    if not assignment_ids:
        return result
    with transaction.atomic():
        rejected = [
            a["id"] for a in _assignments(job, list(assignment_ids)).values() if a["state"] == AssignmentState.REJECTED
        ]
        entries = list(
            CostEntry.objects.filter(
                assignment_id__in=rejected,
                kind__in=list(_CHARGE_PARTS),
                status=CostStatus.CHARGED,
                reversed_by__isnull=True,
            ).order_by("id")
        )
        for entry in entries:
            note = f"assignment {entry.reference} is rejected in the file"
            memo = imported_memo(source, note) if entry.memo.startswith(IMPORTED_MEMO) else note
            reversal, created = reverse_cost(
                entry=entry, idempotency_key=f"{entry.idempotency_key}:reversed", memo=memo
            )
            if created:
                result.ledger_rows_reversed += 1
                result.amount += reversal.amount
                result.entries.append(entry)
        result.assignments_reversed = len({entry.assignment_id for entry in entries})
        if result.ledger_rows_reversed:
            record_audit_event(
                actor=actor,
                action="costs.history_reversed",
                object_type="job",
                object_id=job.pk,
                after={"source": source, **result.as_dict()},
            )
    return result


def _row(n: int, status: str, batch: str = "", **cells: str) -> dict[str, str]:
    """Row ``n`` (assignment <batch>A<n>, worker W<n>) of one of the batch's two HITs, answered "positive"."""
    return review_fixes_row(f"{batch}H{n % 2}", f"{batch}A{n}", f"W{n}", status, "positive", **cells)


def _history(n: int) -> tuple[Job, list[dict[str, str]]]:
    """A history job of ``n`` approved rows and one rejected, imported; returns the job and the restating file's
    rows: all but the last approval rejected, the last one's reward reversed before (only its fee left)."""
    rows = [_row(k, "Approved", ApprovalTime=PAST) for k in range(n)] + [_row(n, "Rejected", RejectionTime=PAST)]
    job = Job.objects.get(pk=_import(_csv(rows)).job)
    reward = CostEntry.objects.get(assignment__external_id=f"A{n - 1}", kind=CostKind.REWARD)
    reverse_cost(entry=reward, idempotency_key="test:reversed-before", memo="reversed before")
    restated = [{**row, "AssignmentStatus": "Rejected", "ApprovalTime": "", "RejectionTime": LATER} for row in rows]
    restated[n - 2] = rows[n - 2]  # stays approved
    return job, restated


def _outcome(run: Callable[[], list[dict[str, Any]]], *, one_by_one: bool) -> tuple[dict[str, Any], Any]:
    """The state ``run`` leaves and what it reports, reversing set-based or (``one_by_one``) as before; rolled
    back after."""
    with transaction.atomic():
        with mock.patch(REVERSE, _reverse_one_by_one) if one_by_one else nullcontext():
            reported = run()
        state = _snapshot()
        transaction.set_rollback(True)
    return state, reported


@pytest.mark.parametrize("n", [4, 12])
def test_an_import_of_rejections_leaves_what_reversing_one_row_at_a_time_left(
    mturk: MTurkMarketplace, standin: MTurkStandIn, n: int
) -> None:
    live, externals = _live_job(mturk, standin, workers=3)  # collected before the history's HITs exist
    _import_live(live, _download(live, {a: ("Approved", T1) for a in externals}))
    history, restated = _history(n)
    rejections = _download(live, {a: ("Rejected", T2) for a in externals[:2]})

    def restate() -> list[dict[str, Any]]:
        return [
            _import(_csv(restated), job=history).costs_reversed,
            _import_live(live, rejections).costs_reversed,
        ]

    before = _outcome(restate, one_by_one=True)
    assert _outcome(restate, one_by_one=False) == before
    reported = restate()
    assert reported == before[1]
    assert [r["ledger_rows_reversed"] for r in reported] == [2 * (n - 2) + 1, 4]
    assert [r["assignments_reversed"] for r in reported] == [n - 1, 2]
    assert not CostEntry.objects.filter(
        kind__in=[CostKind.REWARD, CostKind.MARKETPLACE_FEE],
        status=CostStatus.CHARGED,
        assignment__state=AssignmentState.REJECTED,
        reversed_by__isnull=True,
    ).exists()
    assert restate() == [{**r, "assignments_reversed": 0, "ledger_rows_reversed": 0, "amount": "0"} for r in reported]


def _reversal_queries(rows: int, *, one_by_one: bool = False) -> int:
    batch = f"B{rows}"
    data = _csv([_row(k, "Approved", batch, ApprovalTime=PAST) for k in range(rows)])
    job = Job.objects.get(pk=_import(data).job)
    Assignment.objects.filter(job=job).update(state=AssignmentState.REJECTED)
    reverse = _reverse_one_by_one if one_by_one else reverse_rejected_assignment_costs
    with CaptureQueriesContext(connection) as queries:
        result = reverse(job=job, assignment_ids=[f"{batch}A{k}" for k in range(rows)], source="batch.csv", actor=ACTOR)
    assert (result.assignments_reversed, result.ledger_rows_reversed) == (rows, 2 * rows)
    assert result.amount == -Decimal("0.12") * rows
    return len(queries.captured_queries)


def test_reversing_rejected_charges_takes_queries_that_do_not_grow_with_them() -> None:
    five = _reversal_queries(5)
    thirty = _reversal_queries(30)
    assert thirty <= five, (five, thirty)
