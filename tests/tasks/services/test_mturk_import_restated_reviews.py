"""A later download of an MTurk batch restates reviews; each case here failed before its fix:

1. a row that restates a review without a review time (empty ApprovalTime/RejectionTime, or no such column) is
   restated as of the import, which the import report says, and books or reverses its money as a timed one does;
2. work of a HIT published from here approved, rejected and approved again across three downloads is charged
   again exactly once (a fourth identical download books nothing);
3. a restated review has the budget and slot consequences of the same review made here: an approval restated as
   a rejection gives its reservation back as a local rejection does, and a rejection restated as approved is
   reserved again (``budget.after_review``) as a local override is; live work a file first shows rejected gives
   its slot back once, as a local rejection (or collect) does.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from tasks.models import Assignment, AssignmentState, BudgetReservation, CostEntry, CostKind, CostStatus, Job
from tasks.services.budget import job_spent
from tasks.services.mturk_collect import collect_mturk_work
from tasks.services.mturk_results import MTurkImportResult, export_mturk_results, import_mturk_results
from tasks.services.mturk_results.reader import STANDARD_COLUMNS, format_time
from tasks.services.review import override_rejection, reject_assignment
from tests.marketplaces.mturk_standin import MTurkStandIn
from tests.tasks.services.mturk_helpers import ACTOR, submitted_mturk_assignments
from tests.tasks.services.test_mturk_import_review_fixes import HEAD, LATER, PAST, _csv
from tests.tasks.services.test_mturk_import_review_fixes import _row as review_fixes_row
from workforce.marketplaces.mturk import MTurkMarketplace

pytestmark = pytest.mark.django_db
T1, T2, T3 = "Fri Nov 08 10:00:00 PST 2019", "Sat Nov 09 10:00:00 PST 2019", "Sun Nov 10 10:00:00 PST 2019"


def _row(assignment: str, status: str, **cells: str) -> dict[str, str]:
    """A row of HIT H1 by worker W<assignment>, answered "positive"."""
    return review_fixes_row("H1", assignment, f"W{assignment}", status, "positive", **cells)


def _import(data: bytes, job: Job | None = None, **kwargs: Any) -> MTurkImportResult:
    if job is None:
        kwargs.update(new_job_name="sentiment", labels=["positive", "negative"])
    return import_mturk_results(data=data, filename="batch.csv", actor=ACTOR, job=job, **kwargs)


def _sum(**filters: Any) -> Decimal:
    """Summed in Python: SQLite adds decimals as floats."""
    return sum(CostEntry.objects.filter(**filters).values_list("amount", flat=True), Decimal(0))


def _between(moment: datetime | None, start: datetime, end: datetime) -> bool:
    return moment is not None and start <= moment <= end


# 1. A restatement without a review time.


def test_an_approval_restated_rejected_by_a_row_without_rejection_time_is_restated_as_of_the_import() -> None:
    approved, other = _row("A1", "Approved", ApprovalTime=PAST), _row("A2", "Approved", ApprovalTime=PAST)
    job = Job.objects.get(pk=_import(_csv([approved, other])).job)
    assert _sum(assignment__external_id="A1") == Decimal("0.12")

    start = timezone.now()
    result = _import(_csv([{**approved, "AssignmentStatus": "Rejected", "ApprovalTime": ""}, other]), job=job)
    end = timezone.now()

    a1 = Assignment.objects.get(external_id="A1")
    assert a1.state == AssignmentState.REJECTED and _between(a1.reviewed_at, start, end)
    assert _sum(assignment=a1) == 0 and Decimal(result.costs_reversed["amount"]) == Decimal("-0.12")
    [restated] = result.reviews_restated
    assert {k: restated[k] for k in ("line", "assignment", "before", "after")} == {
        "line": 2,
        "assignment": "A1",
        "before": "approved",
        "after": "rejected",
    }
    assert "RejectionTime" in restated["note"] and "import" in restated["note"]
    assert not BudgetReservation.objects.exists()  # imported history stays outside the budget
    count = CostEntry.objects.count()
    again = _import(_csv([{**approved, "AssignmentStatus": "Rejected", "ApprovalTime": ""}, other]), job=job)
    assert again.reviews_restated == [] and CostEntry.objects.count() == count


def test_a_rejection_restated_approved_by_a_file_without_time_columns_is_booked_once_dated_at_the_import() -> None:
    rejected, other = _row("A1", "Rejected", RejectionTime=PAST), _row("A2", "Approved", ApprovalTime=PAST)
    job = Job.objects.get(pk=_import(_csv([rejected, other])).job)
    assert not CostEntry.objects.filter(assignment__external_id="A1").exists()
    header = [h for h in HEAD if h not in ("ApprovalTime", "RejectionTime")]

    start = timezone.now()
    result = _import(_csv([{**rejected, "AssignmentStatus": "Approved"}, other], header), job=job)
    end = timezone.now()

    a1 = Assignment.objects.get(external_id="A1")
    assert a1.state == AssignmentState.APPROVED and _between(a1.reviewed_at, start, end)
    assert _sum(assignment=a1, kind=CostKind.REWARD) == Decimal("0.10")
    assert _sum(assignment=a1, kind=CostKind.MARKETPLACE_FEE) == Decimal("0.02")
    assert all(
        _between(d, start, end) for d in CostEntry.objects.filter(assignment=a1).values_list("created_at", flat=True)
    )
    assert [r["assignment"] for r in result.reviews_restated] == ["A1"]
    assert "ApprovalTime" in result.reviews_restated[0]["note"]
    count = CostEntry.objects.count()
    again = _import(_csv([{**rejected, "AssignmentStatus": "Approved"}, other], header), job=job)
    assert again.reviews_restated == [] and CostEntry.objects.count() == count


def test_a_timed_restatement_is_reported_without_a_note() -> None:
    rejected, other = _row("A1", "Rejected", RejectionTime=PAST), _row("A2", "Approved", ApprovalTime=PAST)
    job = Job.objects.get(pk=_import(_csv([rejected, other])).job)
    result = _import(_csv([{**rejected, "AssignmentStatus": "Approved", "ApprovalTime": LATER}, other]), job=job)
    assert result.reviews_restated == [{"line": 2, "assignment": "A1", "before": "rejected", "after": "approved"}]


# 2 and 3. Work of a HIT published from here.


def _live_job(mturk: MTurkMarketplace, standin: MTurkStandIn, workers: int = 2) -> tuple[Job, list[str]]:
    assignments = submitted_mturk_assignments(mturk, standin, workers=workers)
    return assignments[0].job, [str(a.external_id) for a in assignments]


def _download(job: Job, reviews: dict[str, tuple[str, str]]) -> bytes:
    """The job's results as MTurk would list them, with ``reviews``: assignment id -> (status, review time)."""
    out = io.StringIO(newline="")
    export_mturk_results(job, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    for row in rows:
        if row["AssignmentId"] in reviews:
            status, at = reviews[row["AssignmentId"]]
            times = {"Approved": ("ApprovalTime", "RejectionTime"), "Rejected": ("RejectionTime", "ApprovalTime")}
            mine, theirs = times[status]
            row.update({"AssignmentStatus": status, mine: at, theirs: ""})
    header = list(rows[0]) if rows else list(STANDARD_COLUMNS)
    return _csv(rows, header)


def _import_live(job: Job, data: bytes) -> MTurkImportResult:
    return import_mturk_results(data=data, filename="live.csv", actor=ACTOR, job=job, answer_field="label")


def _reserved(job: Job) -> Decimal:
    return Job.objects.values_list("budget_reserved", flat=True).get(pk=job.pk)


def test_live_work_approved_rejected_and_approved_again_is_charged_again_once(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    job, (first, _) = _live_job(mturk, standin)
    committed = _sum()
    assignment = Assignment.objects.get(external_id=first)
    charged = {"assignment": assignment, "status": CostStatus.CHARGED}

    _import_live(job, _download(job, {first: ("Approved", T1)}))
    assert _sum(**charged) == Decimal("0.06") and _sum() == committed  # the charge replaced one slot
    _import_live(job, _download(job, {first: ("Rejected", T2)}))
    assert Assignment.objects.get(pk=assignment.pk).state == AssignmentState.REJECTED
    assert _sum(**charged) == 0
    third = _import_live(job, _download(job, {first: ("Approved", T3)}))

    assert Assignment.objects.get(pk=assignment.pk).state == AssignmentState.APPROVED
    assert third.costs["live_assignments_booked"] == 1 and third.costs["ledger_rows_booked"] == 2
    open_charges = CostEntry.objects.filter(
        assignment=assignment, kind__in=[CostKind.REWARD, CostKind.MARKETPLACE_FEE], reversed_by__isnull=True
    )
    assert sorted(open_charges.values_list("kind", "amount")) == [
        (CostKind.MARKETPLACE_FEE, Decimal("0.01")),
        (CostKind.REWARD, Decimal("0.05")),
    ]
    assert all("rebooked-1" in key for key in open_charges.values_list("idempotency_key", flat=True))
    assert _sum(**charged) == Decimal("0.06")
    assert _sum() == committed  # no other slot was settled by the second approval
    ledger = sorted(CostEntry.objects.values_list("idempotency_key", "amount"))
    fourth = _import_live(job, _download(job, {first: ("Approved", T3)}))
    assert fourth.costs["ledger_rows_booked"] == 0 and fourth.reviews_restated == []
    assert sorted(CostEntry.objects.values_list("idempotency_key", "amount")) == ledger


def test_a_live_approval_restated_rejected_gives_back_what_a_local_rejection_does(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    job, (first, second) = _live_job(mturk, standin)
    reserved, ledger = _reserved(job), _sum()
    reject_assignment(assignment=Assignment.objects.get(external_id=second), actor=ACTOR, feedback="no")
    local_release, local_ledger = reserved - _reserved(job), ledger - _sum()
    assert local_release == local_ledger == Decimal("0.06")
    _import_live(job, _download(job, {first: ("Approved", T1)}))
    reserved, ledger = _reserved(job), _sum()

    _import_live(job, _download(job, {first: ("Rejected", T2)}))

    assert (reserved - _reserved(job), ledger - _sum()) == (local_release, local_ledger)
    assert _reserved(job) >= job_spent(job)


def test_a_live_rejection_restated_approved_is_reserved_again_as_a_local_override_is(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    job, (first, second) = _live_job(mturk, standin)
    for external in (first, second):
        reject_assignment(assignment=Assignment.objects.get(external_id=external), actor=ACTOR, feedback="no")
    reserved, ledger = _reserved(job), _sum()
    override_rejection(assignment=Assignment.objects.get(external_id=second), actor=ACTOR)
    local = (_reserved(job) - reserved, _sum() - ledger)
    assert local == (Decimal("0.06"), Decimal("0.06"))
    reserved, ledger = _reserved(job), _sum()

    soon = format_time(timezone.now() + timedelta(minutes=1))
    result = _import_live(job, _download(job, {first: ("Approved", soon)}))

    assert [r["assignment"] for r in result.reviews_restated] == [first]
    assert (_reserved(job) - reserved, _sum() - ledger) == local  # budget.after_review trued the reservation up
    assert result.budget["after_review"] is True


def test_live_work_first_seen_rejected_in_a_file_gives_its_slot_back_once_as_a_local_rejection_does(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    job, (first, second) = _live_job(mturk, standin)
    reserved, ledger = _reserved(job), _sum()
    reject_assignment(assignment=Assignment.objects.get(external_id=second), actor=ACTOR, feedback="no")
    local = (reserved - _reserved(job), ledger - _sum())
    reserved, ledger = _reserved(job), _sum()

    result = _import_live(job, _download(job, {first: ("Rejected", T1)}))

    assert (reserved - _reserved(job), ledger - _sum()) == local == (Decimal("0.06"), Decimal("0.06"))
    assert result.budget["slots_released"] == 1
    after = (_reserved(job), _sum())
    _import_live(job, _download(job, {first: ("Rejected", T1)}))
    standin.state.assignments[first]["AssignmentStatus"] = "Rejected"
    collect_mturk_work(actor=ACTOR, connector=mturk)
    assert (_reserved(job), _sum()) == after


def test_the_command_prints_the_note_of_a_restatement_without_a_review_time(tmp_path: Any) -> None:
    from django.core.management import call_command

    approved, other = _row("A1", "Approved", ApprovalTime=PAST), _row("A2", "Approved", ApprovalTime=PAST)
    job = Job.objects.get(pk=_import(_csv([approved, other])).job)
    path = tmp_path / "later.csv"
    path.write_bytes(_csv([{**approved, "AssignmentStatus": "Rejected", "ApprovalTime": ""}, other]))
    out = io.StringIO()

    call_command("import_mturk_results", str(path), job=str(job.pk), stdout=out)

    [line] = [line for line in out.getvalue().splitlines() if "assignment A1" in line]
    assert "rejected now (was approved)" in line and "RejectionTime" in line
