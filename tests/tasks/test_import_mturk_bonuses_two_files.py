"""The same MTurk bonuses in both kinds of bonus file (the bulk file paid from, without grant times, and
ListBonusPayments with them) are booked once, whichever file is imported first; an undated booking takes the
grant time the other file gives; two payments of the same bonus stay two."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from tasks.models import CostEntry, CostKind
from tasks.services.ledger import CostLine, bonus_cost_key, record_costs
from tasks.services.mturk_results.bonus_matching import legacy_bonus_key
from tests.tasks.test_import_mturk_bonuses import _bonus_rows, _bonuses, _expected, _job, _sum, _write
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
BULK = ["workerId", "assignmentId", "bonusAmount", "reason"]
LISTED = ["WorkerId", "BonusAmount", "AssignmentId", "Reason", "GrantTime"]


def _granted(n: int) -> str:
    return f"2019-11-{20 + n % 9:02d}T10:00:00+00:00"


def _bulk_file(tmp_path: Path, rows: list[dict[str, str]]) -> Path:
    return _write(tmp_path / "bonus.csv", BULK, [[r[c] for c in BULK] for r in rows])


def _listed_file(tmp_path: Path, rows: list[tuple[dict[str, str], str]], name: str = "listed.csv") -> Path:
    table = [[r["workerId"], r["bonusAmount"], r["assignmentId"], r["reason"], granted] for r, granted in rows]
    return _write(tmp_path / name, LISTED, table)


def _bonus_count() -> int:
    return CostEntry.objects.filter(kind=CostKind.BONUS).count()


def test_the_bulk_file_then_list_bonus_payments_books_each_bonus_once_dated_at_its_grant_time(tmp_path: Path) -> None:
    job = _job()
    rows = _bonus_rows()
    amount, fees = _expected(rows)
    assert _bonuses(job, _bulk_file(tmp_path, rows))["bonuses_booked"] == len(rows)

    report = _bonuses(job, _listed_file(tmp_path, [(r, _granted(n)) for n, r in enumerate(rows)]))

    assert (report["bonuses_booked"], report["already_booked"], report["dated_from_file"]) == (0, 10, 10)
    assert _bonus_count() == len(rows)
    assert (_sum(kind=CostKind.BONUS), _sum(kind=CostKind.MARKETPLACE_FEE)) == (amount, fees)
    days = sorted(day.isoformat() for day in CostEntry.objects.dates("created_at", "day"))
    assert days == sorted({_granted(n)[:10] for n in range(len(rows))})  # bonus and fee rows alike
    assert _bonuses(job, _bulk_file(tmp_path, rows))["bonuses_booked"] == 0  # the bulk file again: nothing


def test_list_bonus_payments_then_the_bulk_file_books_nothing_more(tmp_path: Path) -> None:
    job = _job()
    rows = _bonus_rows()
    assert _bonuses(job, _listed_file(tmp_path, [(r, _granted(n)) for n, r in enumerate(rows)]))[
        "bonuses_booked"
    ] == len(rows)
    report = _bonuses(job, _bulk_file(tmp_path, rows))
    assert (report["bonuses_booked"], report["already_booked"]) == (0, len(rows))
    assert _sum(kind=CostKind.BONUS) == _expected(rows)[0]


def test_a_bonus_paid_twice_stays_two_payments_across_files_and_partial_exports(tmp_path: Path) -> None:
    job = _job()
    first = _bonus_rows()[0]
    paid = Decimal(first["bonusAmount"])
    _bonuses(job, _bulk_file(tmp_path, [first]))  # the bulk file names the bonus once
    # ListBonusPayments shows it paid twice: the earlier payment is the bulk file's, the later one is new
    report = _bonuses(job, _listed_file(tmp_path, [(first, _granted(2)), (first, _granted(1))]))
    assert (report["bonuses_booked"], report["dated_from_file"]) == (1, 1)
    assert _sum(kind=CostKind.BONUS) == 2 * paid
    # a later export of one period only, and the bulk file again, book nothing more
    assert _bonuses(job, _listed_file(tmp_path, [(first, _granted(2))], "late.csv"))["bonuses_booked"] == 0
    assert _bonuses(job, _bulk_file(tmp_path, [first]))["bonuses_booked"] == 0
    assert _bonus_count() == 2


def test_a_bonus_booked_under_the_earlier_key_scheme_is_not_booked_again(tmp_path: Path) -> None:
    job = _job()
    first = _bonus_rows()[0]
    amount = Decimal(first["bonusAmount"])
    old = legacy_bonus_key(first["assignmentId"], first["workerId"], amount, first["reason"], None)
    record_costs(
        [
            CostLine(
                job_id=job.pk,
                kind=CostKind.BONUS,
                amount=amount,
                idempotency_key=bonus_cost_key(old),
                marketplace="mturk",
                reference=first["assignmentId"],
                created_at=timezone.now(),
            )
        ]
    )
    report = _bonuses(job, _bulk_file(tmp_path, [first]))
    assert (report["bonuses_booked"], report["already_booked"]) == (0, 1)
    assert _bonus_count() == 1


def test_dating_an_earlier_booking_is_in_the_audit_trail(tmp_path: Path) -> None:
    job = _job()
    first = _bonus_rows()[0]
    _bonuses(job, _bulk_file(tmp_path, [first]))
    _bonuses(job, _listed_file(tmp_path, [(first, _granted(0))]))
    event = AuditEvent.objects.filter(action="bonuses.imported").order_by("-id").first()
    assert event is not None and len(event.after["dated_from_file"]) == 1
    assert event.after["dated_from_file"][0].endswith(_granted(0))
