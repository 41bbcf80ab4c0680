"""The same MTurk bonuses in both kinds of bonus file (the bulk file paid from, without grant times, and
ListBonusPayments with them) are booked once, whichever file is imported first; an undated booking is replaced
by the dated one (booked at the grant time, the undated rows reversed); two payments of the same bonus stay
two; bookings of the earlier key scheme are matched too."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from tasks.models import CostEntry, CostKind
from tasks.services.ledger import CostLine, bonus_cost_key, record_costs
from tasks.services.mturk_history_costs import imported_memo
from tasks.services.mturk_results.bonus_matching import legacy_bonus_key
from tests.tasks.test_import_mturk_bonuses import _bonus_rows, _bonuses, _expected, _job, _sum, _write
from workforce.marketplaces.mturk_fees import bonus_fee
from workforce.models import AuditEvent
from workforce.services import get_or_create_workers

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


def _standing(kind: str = CostKind.BONUS) -> Any:
    """The ledger rows of ``kind`` no reversal cancels."""
    return CostEntry.objects.filter(kind=kind, reversed_by__isnull=True)


def _bonus_count() -> int:
    return _standing().count()


def _net() -> Decimal:
    """What the ledger holds in all: bonuses, fees and their reversals."""
    return sum(CostEntry.objects.values_list("amount", flat=True), Decimal(0))


def test_the_bulk_file_then_list_bonus_payments_books_each_bonus_once_dated_at_its_grant_time(tmp_path: Path) -> None:
    job = _job()
    rows = _bonus_rows()
    amount, fees = _expected(rows)
    assert _bonuses(job, _bulk_file(tmp_path, rows))["bonuses_booked"] == len(rows)

    report = _bonuses(job, _listed_file(tmp_path, [(r, _granted(n)) for n, r in enumerate(rows)]))

    assert (report["bonuses_booked"], report["already_booked"], report["dated_from_file"]) == (0, 10, 10)
    assert _bonus_count() == len(rows) and _net() == amount + fees
    standing = [*_standing(), *_standing(CostKind.MARKETPLACE_FEE)]
    days = sorted({row.created_at.date().isoformat() for row in standing})
    assert days == sorted({_granted(n)[:10] for n in range(len(rows))})  # bonus and fee rows alike
    # the undated rows stay, each cancelled by one reversal (the ledger is append-only)
    assert CostEntry.objects.filter(kind=CostKind.REVERSAL).count() == 2 * len(rows)
    assert _bonuses(job, _bulk_file(tmp_path, rows))["bonuses_booked"] == 0  # the bulk file again: nothing
    again = _bonuses(job, _listed_file(tmp_path, [(r, _granted(n)) for n, r in enumerate(rows)]))
    assert (again["bonuses_booked"], again["dated_from_file"], _net()) == (0, 0, amount + fees)


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
    assert sum(_standing().values_list("amount", flat=True), Decimal(0)) == 2 * paid
    # a later export of one period only, and the bulk file again, book nothing more
    assert _bonuses(job, _listed_file(tmp_path, [(first, _granted(2))], "late.csv"))["bonuses_booked"] == 0
    assert _bonuses(job, _bulk_file(tmp_path, [first]))["bonuses_booked"] == 0
    assert _bonus_count() == 2


def _legacy_booking(job: Any, row: dict[str, str], granted: str | None) -> None:
    """A bonus (and its fee) booked as the earlier version did: its key's digest over content and grant time."""
    amount = Decimal(row["bonusAmount"])
    grant = datetime.fromisoformat(granted) if granted else None
    old = legacy_bonus_key(row["assignmentId"], row["workerId"], amount, row["reason"], grant)
    worker = get_or_create_workers(marketplace="mturk", external_ids=[row["workerId"]])[row["workerId"]]
    base = {
        "job_id": job.pk,
        "marketplace": "mturk",
        "reference": row["assignmentId"],
        "worker_id": worker.pk,
        "memo": imported_memo("old-bonus.csv", row["reason"]),
        "created_at": grant or timezone.now(),
    }
    record_costs(
        [
            CostLine(kind=CostKind.BONUS, amount=amount, idempotency_key=bonus_cost_key(old), **base),
            CostLine(
                kind=CostKind.MARKETPLACE_FEE,
                amount=bonus_fee(amount),
                idempotency_key=bonus_cost_key(old, "fee"),
                **base,
            ),
        ]
    )


@pytest.mark.parametrize("granted", [None, "2019-11-21T10:00:00+00:00"])
def test_a_bonus_booked_under_the_earlier_key_scheme_is_not_booked_again_from_the_same_kind_of_file(
    tmp_path: Path, granted: str | None
) -> None:
    job = _job()
    first = _bonus_rows()[0]
    _legacy_booking(job, first, granted)
    again = _listed_file(tmp_path, [(first, granted)]) if granted else _bulk_file(tmp_path, [first])
    report = _bonuses(job, again)
    assert (report["bonuses_booked"], report["already_booked"]) == (0, 1)
    assert _bonus_count() == 1


def test_an_undated_booking_of_the_earlier_scheme_is_replaced_by_list_bonus_payments(tmp_path: Path) -> None:
    job = _job()
    first = _bonus_rows()[0]
    _legacy_booking(job, first, None)
    before = _net()
    report = _bonuses(job, _listed_file(tmp_path, [(first, _granted(3))]))
    assert (report["bonuses_booked"], report["dated_from_file"]) == (0, 1)
    assert _bonus_count() == 1 and _net() == before
    assert _standing().get().created_at.date().isoformat() == _granted(3)[:10]


def test_a_dated_booking_of_the_earlier_scheme_covers_the_bulk_files_row(tmp_path: Path) -> None:
    job = _job()
    first = _bonus_rows()[0]
    _legacy_booking(job, first, _granted(4))
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


def test_an_earlier_undated_booking_whose_memo_was_cut_short_is_still_replaced(tmp_path: Path) -> None:
    """A reason of 300 characters does not fit the memo; the booking is found by its exact earlier key."""
    job = _job()
    first = {**_bonus_rows()[0], "reason": ("Thanks for the careful work. " * 10).strip()}
    _legacy_booking(job, first, None)
    before = _net()
    report = _bonuses(job, _listed_file(tmp_path, [(first, _granted(5))]))
    assert (report["bonuses_booked"], report["dated_from_file"]) == (0, 1)
    assert _bonus_count() == 1 and _net() == before


def test_an_earlier_dated_booking_whose_memo_was_cut_short_covers_the_bulk_files_row(tmp_path: Path) -> None:
    """The bulk file has no grant time, so the dated booking cannot be found by its key; its memo holds only the
    start of a 300-character reason, which is enough to know it books this row."""
    job = _job()
    first = {**_bonus_rows()[0], "reason": ("Thanks for the careful work. " * 10).strip()}
    _legacy_booking(job, first, _granted(6))
    before = _net()
    report = _bonuses(job, _bulk_file(tmp_path, [first]))
    assert (report["bonuses_booked"], report["already_booked"]) == (0, 1)
    assert _bonus_count() == 1 and _net() == before


def test_a_cut_memo_does_not_cover_a_row_whose_reason_differs_before_the_cut(tmp_path: Path) -> None:
    """Reasons that agree up to the cut cannot be told apart (the row is taken as booked: paying a bonus twice is
    the worse mistake); one that differs before it is another bonus."""
    job = _job()
    long = ("Thanks for the careful work. " * 10).strip()
    first = {**_bonus_rows()[0], "reason": long}
    _legacy_booking(job, first, _granted(6))
    other = {**first, "reason": long[:100] + " and a different ending"}
    report = _bonuses(job, _bulk_file(tmp_path, [other]))
    assert report["bonuses_booked"] == 1
    assert _bonus_count() == 2
