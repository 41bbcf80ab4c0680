"""Ops audit finding 4: ``import_mturk_bonuses`` books an MTurk bonus file (the real P.808 ``bonus.csv``: 10
bonuses, $58.20) and MTurk's fee on each bonus as charged history, once; a bad file exits 2 naming its line
with nothing written. Expected sums are computed here from the CSV with ``csv``/``Decimal``."""

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

from tasks.models import Assignment, CostEntry, CostKind, CostStatus, Hit, Job, MTurkBonusState
from tasks.services.mturk_collect import collect_mturk_work
from tasks.services.mturk_history_costs import imported_history
from tasks.services.mturk_results import import_mturk_results
from tasks.services.mturk_review import send_mturk_bonus
from tests.marketplaces.mturk_standin import MTurkStandIn
from tests.tasks.services.mturk_fixtures import DATA_DIR, real_file
from tests.tasks.services.mturk_helpers import ACTOR, published_mturk_job
from workforce.marketplaces.mturk import MTurkMarketplace
from workforce.models import AuditEvent, Worker

pytestmark = pytest.mark.django_db
BONUS = "p808_bonus.csv"
BATCH = "p808_Batch_3824355_batch_results.csv"
CENT = Decimal("0.01")


def _bonus_rows() -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(real_file(BONUS).decode("utf-8-sig"), newline="")))


def _fee(amount: Decimal) -> Decimal:
    return max((amount * Decimal("0.20")).quantize(CENT, ROUND_HALF_UP), CENT)


def _expected(rows: list[dict[str, str]], column: str = "bonusAmount") -> tuple[Decimal, Decimal]:
    amounts = [Decimal(r[column]) for r in rows]
    return sum(amounts, Decimal(0)), sum((_fee(a) for a in amounts), Decimal(0))


def _sum(**filters: Any) -> Decimal:
    return sum(CostEntry.objects.filter(**filters).values_list("amount", flat=True), Decimal(0))


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *rows])
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def _job() -> Job:
    """The P.808 qualification batch imported as a job (all its rows Submitted, so no cost of its own). Its
    AutoApprovalTime cells are blanked: past them MTurk approved and paid the rows, which would be booked."""
    rows = list(csv.reader(io.StringIO(real_file(BATCH).decode("utf-8-sig"), newline="")))
    column = rows[0].index("AutoApprovalTime")
    for row in rows[1:]:
        row[column] = ""
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    import_mturk_results(
        data=out.getvalue().encode(), filename=BATCH, actor=ACTOR, new_job_name="p808", answer_field="8_hearing"
    )
    return Job.objects.get()


def _bonuses(job: Job, path: Path | str) -> dict[str, Any]:
    out = io.StringIO()
    call_command("import_mturk_bonuses", "--job", str(job.pk), str(path), "--json", stdout=out)
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


def _refused(job: Job, path: Path) -> str:
    with pytest.raises(CommandError) as caught:
        call_command("import_mturk_bonuses", "--job", str(job.pk), str(path), stdout=io.StringIO())
    assert caught.value.returncode == 2
    return str(caught.value)


def test_every_bonus_of_the_real_file_and_its_fee_is_booked_as_charged_history() -> None:
    job = _job()
    rows = _bonus_rows()
    amount, fees = _expected(rows)
    assert (len(rows), amount) == (10, Decimal("58.20"))
    workers_before = Worker.objects.count()

    report = _bonuses(job, DATA_DIR / BONUS)

    assert (report["rows"], report["bonuses_booked"], report["already_booked"]) == (10, 10, 0)
    assert (Decimal(report["amount_booked"]), Decimal(report["fees_booked"])) == (amount, fees)
    assert _sum(kind=CostKind.BONUS) == amount
    assert _sum(kind=CostKind.MARKETPLACE_FEE) == fees == Decimal("11.64")
    entries = CostEntry.objects.filter(job=job)
    assert entries.count() == 20 == entries.filter(imported_history()).count()
    assert set(entries.values_list("status", "currency", "marketplace")) == {(CostStatus.CHARGED, "USD", "mturk")}
    # Each bonus and its fee are on the row's worker; one of them worked on the imported batch.
    booked = set(entries.filter(kind=CostKind.BONUS).values_list("worker__external_id", "reference", "amount"))
    assert booked == {(r["workerId"], r["assignmentId"], Decimal(r["bonusAmount"])) for r in rows}
    assert report["workers_created"] == 9 == Worker.objects.count() - workers_before
    known = Worker.objects.get(marketplace="mturk", external_id="A98E8M4QLI9RS")
    assert known.assignments.filter(job=job).exists() and entries.filter(worker=known, kind=CostKind.BONUS).exists()
    # None of the bonus file's assignments is in the results files: booked, unlinked, and reported by line.
    assert not entries.filter(assignment__isnull=False).exists()
    assert [r["line"] for r in report["rows_unlinked"]] == list(range(2, 12))
    assert AuditEvent.objects.filter(action="bonuses.imported").count() == 1


def test_importing_the_file_again_books_nothing() -> None:
    job = _job()
    _bonuses(job, DATA_DIR / BONUS)
    before = sorted(CostEntry.objects.values_list("idempotency_key", "amount"))

    again = _bonuses(job, DATA_DIR / BONUS)

    assert (again["bonuses_booked"], again["already_booked"], again["amount_booked"]) == (0, 10, "0")
    assert sorted(CostEntry.objects.values_list("idempotency_key", "amount")) == before


def test_cost_report_shows_the_bonuses() -> None:
    job = _job()
    amount, fees = _expected(_bonus_rows())
    _bonuses(job, DATA_DIR / BONUS)

    out = io.StringIO()
    call_command("cost_report", "--job", str(job.pk), "--by", "worker", "--format", "json", stdout=out)
    report = json.loads(out.getvalue())

    assert Decimal(report["total"]) == amount + fees == Decimal("69.84")
    assert Decimal(report["by_kind"]["bonus"]) == amount
    assert len(report["rows"]) == 10
    assert sum((Decimal(r["total"]) for r in report["rows"]), Decimal(0)) == amount + fees


def test_two_different_bonuses_on_one_assignment_are_both_kept_and_a_repeated_line_once(tmp_path: Path) -> None:
    job = _job()
    rows = _bonus_rows()
    header = list(rows[0])
    table = [list(r.values()) for r in rows]
    first = rows[0]
    table.append([first["workerId"], first["assignmentId"], "1.00", "late bonus"])  # another bonus, same assignment
    table.append(list(first.values()))  # the first line repeated verbatim
    path = _write(tmp_path / "bonus.csv", header, table)
    amount, fees = _expected(rows)

    report = _bonuses(job, path)

    assert (report["bonuses_booked"], report["repeated_lines"]) == (11, [13])
    assert Decimal(report["amount_booked"]) == amount + Decimal("1.00")
    assert _sum(kind=CostKind.BONUS, reference=first["assignmentId"]) == Decimal(first["bonusAmount"]) + 1
    assert _sum(kind=CostKind.MARKETPLACE_FEE) == fees + _fee(Decimal("1.00"))


def test_list_bonus_payments_headers_are_accepted(tmp_path: Path) -> None:
    job = _job()
    rows = _bonus_rows()
    header = ["WorkerId", "BonusAmount", "AssignmentId", "Reason", "GrantTime"]
    table = [
        [r["workerId"], f"${r['bonusAmount']}", r["assignmentId"], r["reason"], f"2019-11-2{n % 10}T10:00:00+00:00"]
        for n, r in enumerate(rows)
    ]
    path = _write(tmp_path / "list_bonus_payments.csv", header, table)

    report = _bonuses(job, path)

    assert report["bonuses_booked"] == 10
    assert _sum(kind=CostKind.BONUS) == _expected(rows)[0]
    # Each bonus and its fee are dated at their GrantTime (when MTurk paid), not at the import.
    days = sorted(set(CostEntry.objects.dates("created_at", "day")))
    assert [day.isoformat() for day in days] == sorted({f"2019-11-2{n % 10}" for n in range(len(rows))})


def test_a_bonus_is_linked_to_its_assignment_when_the_job_has_it(tmp_path: Path) -> None:
    job = _job()
    known = Assignment.objects.filter(job=job).select_related("worker").order_by("pk")[0]
    path = _write(
        tmp_path / "b.csv",
        ["workerId", "assignmentId", "bonusAmount", "reason"],
        [[known.worker.external_id, str(known.external_id), "0.50", "good"]],
    )

    report = _bonuses(job, path)

    assert report["rows_unlinked"] == []
    entry = CostEntry.objects.get(kind=CostKind.BONUS)
    assert (entry.assignment_id, entry.hit_id, entry.worker_id) == (known.pk, known.hit_id, known.worker_id)
    assert _sum(kind=CostKind.MARKETPLACE_FEE) == Decimal("0.10")


def test_rows_that_contradict_the_recorded_work_are_skipped_and_reported(tmp_path: Path) -> None:
    job = _job()
    other = Job.objects.create(name="other", labels=job.labels, task_kind=job.task_kind)
    moved, mine = Assignment.objects.filter(job=job).select_related("worker").order_by("pk")[:2]
    Assignment.objects.filter(pk=moved.pk).update(job=other)
    path = _write(
        tmp_path / "b.csv",
        ["workerId", "assignmentId", "bonusAmount", "reason"],
        [
            [moved.worker.external_id, str(moved.external_id), "1.00", "x"],
            [moved.worker.external_id, str(mine.external_id), "1.00", "y"],  # not this assignment's worker
            [mine.worker.external_id, str(mine.external_id), "2.00", "z"],
        ],
    )

    report = _bonuses(job, path)

    assert report["bonuses_booked"] == 1
    assert [(r["line"], r["reason"]) for r in report["rows_skipped"]] == [
        (2, f"assignment {moved.external_id} belongs to job {other.pk}"),
        (3, f"assignment {mine.external_id} was done by another worker than {moved.worker.external_id}"),
    ]
    assert _sum(kind=CostKind.BONUS) == Decimal("2.00")


@pytest.mark.parametrize(
    ("damage", "where"),
    [
        (lambda lines: lines.__setitem__(5, lines[5].replace(",5.28,", ",5.28x,")), "line 6: bonus amount '5.28x'"),
        (lambda lines: lines.__setitem__(4, lines[4].replace(",5.5,", ",5.555,")), "line 5: bonus amount '5.555'"),
        (lambda lines: lines.__setitem__(3, lines[3].replace(",8.8,", ",-8.8,")), "line 4: bonus amount '-8.8'"),
        (lambda lines: lines.__setitem__(7, lines[7].rsplit(",", 1)[0]), "line 8: 3 fields but the header has 4"),
        (lambda lines: lines.__setitem__(9, "," + lines[9].split(",", 1)[1]), "line 10: empty workerId"),
        (lambda lines: lines.__setitem__(0, "workerId,assignment,bonusAmount,reason"), "line 1: the header has no"),
        (lambda lines: lines.__setitem__(2, lines[2] + ',"cut'), "line 3"),
    ],
)
def test_a_bad_file_exits_2_naming_its_line_and_writes_nothing(tmp_path: Path, damage: Any, where: str) -> None:
    job = _job()
    lines = real_file(BONUS).decode("utf-8").split("\r\n")  # the real file has CRLF line ends
    damage(lines)
    path = tmp_path / "bad_bonus.csv"
    path.write_bytes("\r\n".join(lines).encode("utf-8"))
    workers, events = Worker.objects.count(), AuditEvent.objects.count()

    message = _refused(job, path)

    assert where in message and "bad_bonus.csv" in message
    assert not CostEntry.objects.exists()
    assert (Worker.objects.count(), AuditEvent.objects.count()) == (workers, events)


def test_an_unknown_job_or_an_unreadable_file_exits_2(tmp_path: Path) -> None:
    job = _job()
    with pytest.raises(CommandError) as caught:
        call_command("import_mturk_bonuses", "--job", str(job.pk + 99), str(DATA_DIR / BONUS), stdout=io.StringIO())
    assert caught.value.returncode == 2 and "no job" in str(caught.value)
    assert "not a readable file" in _refused(job, tmp_path / "missing.csv")
    (tmp_path / "latin1.csv").write_bytes(
        "workerId,assignmentId,bonusAmount,reason\nA,B,1.00,caf\xe9\n".encode("latin-1")
    )
    assert "not UTF-8" in _refused(job, tmp_path / "latin1.csv")
    assert not CostEntry.objects.exists()


def test_a_bonus_paid_through_this_app_and_listed_again_is_booked_once(
    mturk: MTurkMarketplace, standin: MTurkStandIn, tmp_path: Path
) -> None:
    job = published_mturk_job(mturk, 1)
    hit = Hit.objects.get(job=job)
    external = standin.state.accept(str(hit.external_id), "AW1")
    standin.state.external_submit([("assignmentId", external), (f"item:{hit.items.get().external_id}", "pos")])
    collect_mturk_work(actor=ACTOR, connector=mturk)
    assignment = Assignment.objects.get(external_id=external)
    bonus = send_mturk_bonus(
        assignment=assignment,
        amount=Decimal("1.25"),
        reason="Great work",
        idempotency_key="k1",
        actor=ACTOR,
        connector=mturk,
    )
    assert bonus.state == MTurkBonusState.SENT
    before = sorted(CostEntry.objects.values_list("idempotency_key", "amount"))
    path = _write(
        tmp_path / "listed.csv",
        ["WorkerId", "BonusAmount", "AssignmentId", "Reason", "GrantTime"],
        [["AW1", "1.25", external, "Great work", "2024-05-01T10:00:00+00:00"]],
    )

    report = _bonuses(job, path)

    assert (report["bonuses_booked"], report["already_booked"]) == (0, 1)
    assert sorted(CostEntry.objects.values_list("idempotency_key", "amount")) == before


def test_a_job_in_another_currency_is_refused_for_bonuses_and_results_and_nothing_is_written() -> None:
    """MTurk paid in US dollars: its bonuses and work are booked in USD, so never into a EUR job's ledger."""
    job = _job()
    Job.objects.filter(pk=job.pk).update(currency="EUR")
    job.refresh_from_db()
    real_file(BONUS)
    message = _refused(job, DATA_DIR / BONUS)
    assert "US dollars" in message and "EUR" in message
    with pytest.raises(CommandError, match="US dollars") as caught:
        call_command("import_mturk_results", "--job", str(job.pk), str(DATA_DIR / BATCH), stdout=io.StringIO())
    assert caught.value.returncode == 2
    assert not CostEntry.objects.exists()
