"""Ops audit finding 4: MTurk work imported from a results file books what its approved assignments cost
(reward + MTurk's fee) as charged history, once, whichever path saw the assignment first; rejected and
submitted work books nothing; ``cost_report`` shows the money.

The reviewed file is the real 349-row P.808 batch with every third row approved and the next rejected, as
in the audit (117 approved, 116 rejected, 116 submitted). Expected sums are computed here from the CSV
with ``csv``/``Decimal``, not through the code under test. Its AutoApprovalTime cells are blanked: a Submitted
row past its AutoApprovalTime was approved by MTurk and is booked (the real file's 2019 times all are; see
``test_mturk_import_review_fixes``), and these tests need rows still awaiting review.
"""

from __future__ import annotations

import csv
import io
import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tasks.models import Assignment, AssignmentState, BudgetReservation, CostEntry, CostKind, CostStatus, Hit, Job
from tasks.services.mturk_collect import collect_mturk_work
from tasks.services.mturk_history_costs import IMPORTED_MEMO, HistoryCosts, imported_history
from tasks.services.mturk_results import export_mturk_results, importer
from tests.marketplaces.mturk_standin import MTurkStandIn
from tests.tasks.services.mturk_fixtures import real_file
from tests.tasks.services.mturk_helpers import ACTOR, published_mturk_job
from workforce.marketplaces.mturk import MTurkMarketplace

pytestmark = pytest.mark.django_db
BATCH = "p808_Batch_3824355_batch_results.csv"  # 349 Submitted rows of one HIT with MaxAssignments=500
APPROVED_AT = "Fri Nov 08 10:00:00 PST 2019"
CENT = Decimal("0.01")


def _table(name: str) -> tuple[list[str], list[dict[str, str]]]:
    """The file's header and rows, AutoApprovalTime blanked (the Submitted rows still await review)."""
    rows = list(csv.reader(io.StringIO(real_file(name).decode("utf-8-sig"), newline="")))
    header = rows[0]
    table = [dict(zip(header, r + [""] * (len(header) - len(r)), strict=True)) for r in rows[1:]]
    for row in table:
        row["AutoApprovalTime"] = ""
    return header, table


def _write(path: Path, header: list[str], rows: list[dict[str, str]]) -> Path:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def _reviewed(tmp_path: Path, *, drop: tuple[str, ...] = ()) -> tuple[Path, list[dict[str, str]]]:
    """The real batch with every third row Approved and the next Rejected; returns the file and its rows."""
    header, rows = _table(BATCH)
    for n, row in enumerate(rows):
        if n % 3 == 0:
            row.update(AssignmentStatus="Approved", ApprovalTime=APPROVED_AT)
        elif n % 3 == 1:
            row.update(AssignmentStatus="Rejected", RejectionTime=APPROVED_AT, RequesterFeedback="failed check")
    header = [h for h in header if h not in drop]
    rows = [{k: v for k, v in row.items() if k not in drop} for row in rows]
    return _write(tmp_path / "reviewed.csv", header, rows), rows


def _fee(reward: Decimal, max_assignments: str) -> Decimal:
    """MTurk's published schedule: 20%, plus 20% from 10 assignments per HIT, at least $0.01."""
    rate = Decimal("0.20") + (Decimal("0.20") if max_assignments and int(max_assignments) >= 10 else 0)
    return max((reward * rate).quantize(CENT, ROUND_HALF_UP), CENT)


def _expected(rows: list[dict[str, str]]) -> tuple[int, Decimal, Decimal]:
    approved = [r for r in rows if r["AssignmentStatus"] == "Approved"]
    rewards = sum((Decimal(r["Reward"].lstrip("$")) for r in approved), Decimal(0))
    fees = sum((_fee(Decimal(r["Reward"].lstrip("$")), r.get("MaxAssignments", "")) for r in approved), Decimal(0))
    return len(approved), rewards, fees


def _import(*args: str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("import_mturk_results", *args, "--json", stdout=out)
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


def _sum(**filters: Any) -> Decimal:
    """Summed in Python: SQLite adds decimals as floats."""
    return sum(CostEntry.objects.filter(**filters).values_list("amount", flat=True), Decimal(0))


def _new_job(tmp_path: Path) -> Job:
    path = _write(tmp_path / "submitted.csv", *_table(BATCH))
    report = _import("--new-job", "speech", "--answer-field", "8_hearing", str(path))
    assert not CostEntry.objects.exists()  # every row of the real file is Submitted (awaiting review here)
    return Job.objects.get(pk=report["job"])


def test_approved_rows_are_booked_as_charged_history_and_the_others_book_nothing(tmp_path: Path) -> None:
    job = _new_job(tmp_path)
    assert not CostEntry.objects.exists()
    path, rows = _reviewed(tmp_path)
    approved, rewards, fees = _expected(rows)
    assert (approved, rewards, fees) == (117, Decimal("5.85"), Decimal("2.34"))  # 40% fee: MaxAssignments 500

    report = _import("--job", str(job.pk), str(path))

    assert _sum(kind=CostKind.REWARD) == rewards
    assert _sum(kind=CostKind.MARKETPLACE_FEE) == fees
    assert report["costs"] == {
        "assignments_booked": approved,
        "rewards": str(rewards),
        "fees": str(fees),
        "currency": "USD",
        "live_assignments_booked": 0,
        "ledger_rows_booked": 2 * approved,
        "already_booked": 0,
        "not_booked": [],
    }
    entries = CostEntry.objects.filter(job=job)
    assert entries.count() == 2 * approved
    assert set(entries.values_list("status", "currency", "marketplace")) == {(CostStatus.CHARGED, "USD", "mturk")}
    assert entries.filter(imported_history()).count() == entries.count()
    assert all(
        memo.startswith(IMPORTED_MEMO) and "reviewed.csv" in memo for memo in entries.values_list("memo", flat=True)
    )
    approved_ids = {r["AssignmentId"] for r in rows if r["AssignmentStatus"] == "Approved"}
    assert set(entries.values_list("assignment__external_id", flat=True)) == approved_ids
    assert all(worker == done_by for worker, done_by in entries.values_list("worker_id", "assignment__worker_id"))
    for state in (AssignmentState.REJECTED, AssignmentState.SUBMITTED):
        assert Assignment.objects.filter(job=job, state=state).count() == 116
        assert not CostEntry.objects.filter(assignment__state=state).exists()
    # Dated when MTurk charged it (the file's ApprovalTime), so periods in the finance reports hold it there.
    dated = set(entries.values_list("created_at", flat=True))
    assert dated == set(
        Assignment.objects.filter(job=job, state=AssignmentState.APPROVED).values_list("reviewed_at", flat=True)
    )
    assert len(dated) == 1 and next(iter(dated)).year == int(APPROVED_AT.split()[-1])
    # History is money spent elsewhere: no budget reservation is read, made or released.
    assert not BudgetReservation.objects.exists()
    job.refresh_from_db()
    assert job.budget_reserved == 0


def test_importing_the_file_again_books_nothing_more(tmp_path: Path) -> None:
    job = _new_job(tmp_path)
    path, rows = _reviewed(tmp_path)
    _import("--job", str(job.pk), str(path))
    before = list(CostEntry.objects.values_list("idempotency_key", "amount"))
    assert len(before) == 2 * _expected(rows)[0]

    again = _import("--job", str(job.pk), str(path))

    assert again["costs"]["ledger_rows_booked"] == 0
    assert again["costs"]["already_booked"] == _expected(rows)[0]
    assert list(CostEntry.objects.values_list("idempotency_key", "amount")) == before


def test_a_file_imported_before_costs_were_booked_gets_them_when_imported_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = _new_job(tmp_path)
    path, rows = _reviewed(tmp_path)
    monkeypatch.setattr(importer, "book_imported_assignment_costs", lambda **_: HistoryCosts())  # the old import
    _import("--job", str(job.pk), str(path))
    assert Assignment.objects.filter(job=job, state=AssignmentState.APPROVED).count() == 117
    assert not CostEntry.objects.exists()
    monkeypatch.undo()

    report = _import("--job", str(job.pk), str(path))

    assert report["assignments_updated"] == 0  # nothing else changes
    _, rewards, fees = _expected(rows)
    assert (_sum(kind=CostKind.REWARD), _sum(kind=CostKind.MARKETPLACE_FEE)) == (rewards, fees)


def test_cost_report_shows_the_imported_money(tmp_path: Path) -> None:
    job = _new_job(tmp_path)
    path, rows = _reviewed(tmp_path)
    approved, rewards, fees = _expected(rows)
    _import("--job", str(job.pk), str(path))

    out = io.StringIO()
    call_command("cost_report", "--job", str(job.pk), "--by", "marketplace", "--format", "json", stdout=out)
    report = json.loads(out.getvalue())

    assert Decimal(report["total"]) == rewards + fees == Decimal("8.19")
    assert Decimal(report["charged"]) == rewards + fees
    assert report["approved_assignments"] == approved
    assert {k: Decimal(v) for k, v in report["by_kind"].items()} == {"marketplace_fee": fees, "reward": rewards}
    assert [(r["marketplace"], Decimal(r["total"])) for r in report["rows"]] == [("mturk", rewards + fees)]
    text = io.StringIO()
    call_command("cost_report", "--job", str(job.pk), stdout=text)
    assert f"8.1900 {job.currency} for 117 approved assignments" in text.getvalue()


def test_without_max_assignments_the_fee_is_the_20_percent_base(tmp_path: Path) -> None:
    job = _new_job(tmp_path)
    path, rows = _reviewed(tmp_path, drop=("MaxAssignments",))
    approved, rewards, fees = _expected(rows)
    assert fees == approved * Decimal("0.01")

    report = _import("--job", str(job.pk), str(path))

    assert report["costs"]["fees"] == str(fees)
    assert _sum(kind=CostKind.MARKETPLACE_FEE) == fees
    assert _sum(kind=CostKind.REWARD) == rewards


def test_a_damaged_reviewed_file_is_refused_with_exit_2_and_books_nothing(tmp_path: Path) -> None:
    job = _new_job(tmp_path)
    path, _ = _reviewed(tmp_path)
    lines = path.read_bytes().decode("utf-8").split("\r\n")
    lines[10] = lines[10].rsplit(",", 20)[0]  # data row 10 cut short mid-file
    path.write_bytes("\r\n".join(lines).encode("utf-8"))

    with pytest.raises(CommandError) as caught:
        call_command("import_mturk_results", "--job", str(job.pk), str(path), stdout=io.StringIO())

    assert caught.value.returncode == 2
    assert "line 11" in str(caught.value)
    assert not CostEntry.objects.exists()
    assert not Assignment.objects.filter(state=AssignmentState.APPROVED).exists()


# Work of a HIT published from here: the live rule books it, with the same keys, once.


def _work(standin: MTurkStandIn, hit: Hit, worker: str, label: str) -> str:
    assignment = standin.state.accept(str(hit.external_id), worker)
    standin.state.external_submit([("assignmentId", assignment), (f"item:{hit.items.get().external_id}", label)])
    return assignment


def _live_job(mturk: MTurkMarketplace, standin: MTurkStandIn) -> tuple[Job, list[str]]:
    job = published_mturk_job(mturk, 1)
    hit = Hit.objects.get(job=job)
    ids = [_work(standin, hit, f"AW{n}", label) for n, label in enumerate(["pos", "neg"])]
    collect_mturk_work(actor=ACTOR, connector=mturk)
    return job, ids


def _exported(job: Job, path: Path, *, approve: str = "") -> Path:
    out = io.StringIO(newline="")
    export_mturk_results(job, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue(), newline="")))
    header = list(rows[0])
    for row in rows:
        if row["AssignmentId"] == approve:
            row.update(AssignmentStatus="Approved", ApprovalTime=APPROVED_AT)
    return _write(path, header, rows)


def _ledger() -> list[tuple[str, Decimal, str]]:
    return sorted(CostEntry.objects.values_list("idempotency_key", "amount", "status"))


def test_work_collected_and_charged_live_then_imported_is_booked_once(
    mturk: MTurkMarketplace, standin: MTurkStandIn, tmp_path: Path
) -> None:
    job, (first, _) = _live_job(mturk, standin)
    standin.state.assignments[first]["AssignmentStatus"] = "Approved"
    assert collect_mturk_work(actor=ACTOR, connector=mturk).charges_booked == 2
    charged = _sum(assignment__external_id=first, status=CostStatus.CHARGED)
    assert charged == Decimal("0.06")
    before = _ledger()

    report = _import("--job", str(job.pk), "--answer-field", "label", str(_exported(job, tmp_path / "live.csv")))

    assert report["costs"]["ledger_rows_booked"] == 0
    assert report["costs"]["already_booked"] == 1
    assert _ledger() == before
    assert not CostEntry.objects.filter(imported_history()).exists()


def test_live_work_approved_on_mturk_and_first_seen_in_a_results_file_is_booked_by_the_live_rule_once(
    mturk: MTurkMarketplace, standin: MTurkStandIn, tmp_path: Path
) -> None:
    job, (first, _) = _live_job(mturk, standin)
    committed = _sum()  # the HIT's slots, committed at publish
    path = _exported(job, tmp_path / "approved.csv", approve=first)

    report = _import("--job", str(job.pk), "--answer-field", "label", str(path))

    assert report["costs"]["live_assignments_booked"] == 1
    assert report["costs"]["assignments_booked"] == 0
    assignment = Assignment.objects.get(external_id=first)
    assert assignment.state == AssignmentState.APPROVED
    assert _sum(assignment=assignment, status=CostStatus.CHARGED) == Decimal("0.06")
    # The charge replaced one committed slot (reversed), so the ledger holds the money once.
    settled = CostEntry.objects.filter(
        kind=CostKind.REVERSAL, idempotency_key__startswith=f"assignment:{assignment.pk}:"
    )
    assert settled.count() == 2
    assert _sum() == committed
    after_import = _ledger()
    standin.state.assignments[first]["AssignmentStatus"] = "Approved"
    assert collect_mturk_work(actor=ACTOR, connector=mturk).charges_booked == 0
    _import("--job", str(job.pk), "--answer-field", "label", str(path))
    assert _ledger() == after_import
