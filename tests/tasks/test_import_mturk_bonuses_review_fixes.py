"""Review findings on ``import_mturk_bonuses``: a bonus file cut off inside its last row is refused (so the
whole file imported later books each bonus once), a NUL byte and bytes that are not UTF-8 are refused naming
their line; each refusal exits 2 with nothing written. Built on the real P.808 ``bonus.csv`` (CRLF, unquoted)."""

from __future__ import annotations

import io
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tasks.models import CostEntry, CostKind, Job
from tests.tasks.services.mturk_fixtures import DATA_DIR, real_file
from tests.tasks.test_import_mturk_bonuses import (
    BONUS,
    _bonus_rows,
    _bonuses,
    _expected,
    _fee,
    _job,
    _refused,
    _sum,
    _write,
)
from workforce.models import AuditEvent, Worker

pytestmark = pytest.mark.django_db
LAST_LINE = 11  # the real file: a header and 10 bonuses


def _real_text() -> str:
    text = real_file(BONUS).decode("utf-8")
    assert text.endswith("more than 20 hits + top20 quality group\r\n")  # the last reason, then CRLF
    return text


def _import_if_taken(job: Job, path: Path) -> None:
    """Import the file; a refusal is fine here (what these tests check is the ledger afterwards)."""
    try:
        call_command("import_mturk_bonuses", "--job", str(job.pk), str(path), stdout=io.StringIO())
    except CommandError as exc:
        assert exc.returncode == 2


def _nothing_written(workers: int, events: int) -> None:
    assert not CostEntry.objects.exists()
    assert (Worker.objects.count(), AuditEvent.objects.count()) == (workers, events)


def _cut_in_reason(text: str) -> str:
    return text.removesuffix(" + top20 quality group\r\n")


def _cut_in_quoted_reason(text: str) -> str:
    head, comma, reason = _cut_in_reason(text).rpartition(",")
    return f'{head}{comma}"{reason}'  # the last reason quoted, its closing quote lost


CUTS: list[tuple[str, Callable[[str], str]]] = [
    ("inside the reason", _cut_in_reason),
    ("after the amount's comma", lambda text: text.rsplit(",", 1)[0] + ","),
    ("inside a quoted reason", _cut_in_quoted_reason),
]


@pytest.mark.parametrize("cut", [cut for _, cut in CUTS], ids=[name for name, _ in CUTS])
def test_a_file_cut_off_inside_its_last_row_is_refused_naming_the_line(
    tmp_path: Path, cut: Callable[[str], str]
) -> None:
    job = _job()
    path = tmp_path / "cut_bonus.csv"
    path.write_bytes(cut(_real_text()).encode())
    workers, events = Worker.objects.count(), AuditEvent.objects.count()

    message = _refused(job, path)

    assert f"cut_bonus.csv line {LAST_LINE}" in message and "cut off" in message
    _nothing_written(workers, events)


def test_the_whole_file_after_a_cut_one_books_each_bonus_once(tmp_path: Path) -> None:
    """The review's case: the cut last reason did not match the full one, so the last bonus was booked twice."""
    job = _job()
    rows = _bonus_rows()
    amount, fees = _expected(rows)
    cut = tmp_path / "cut_bonus.csv"
    cut.write_bytes(_cut_in_reason(_real_text()).encode())
    _import_if_taken(job, cut)

    _import_if_taken(job, DATA_DIR / BONUS)

    assert (_sum(kind=CostKind.BONUS), _sum(kind=CostKind.MARKETPLACE_FEE)) == (amount, fees)
    assert _bonuses(job, DATA_DIR / BONUS)["bonuses_booked"] == 0
    _import_if_taken(job, cut)  # the cut file after the whole one books nothing more either
    assert _sum(kind=CostKind.BONUS) + _sum(kind=CostKind.MARKETPLACE_FEE) == amount + fees == Decimal("69.84")


def test_a_file_cut_between_the_last_rows_cr_and_lf_is_whole_and_books_each_bonus_once(tmp_path: Path) -> None:
    job = _job()
    amount, _ = _expected(_bonus_rows())
    path = tmp_path / "cr_bonus.csv"
    path.write_bytes(_real_text().removesuffix("\n").encode())  # the row ends at its CR: nothing of it is lost

    assert _bonuses(job, path)["bonuses_booked"] == 10
    assert _bonuses(job, DATA_DIR / BONUS)["bonuses_booked"] == 0
    assert _sum(kind=CostKind.BONUS) == amount


def test_a_second_bonus_of_the_same_amount_with_another_reason_is_still_booked(tmp_path: Path) -> None:
    job = _job()
    rows = _bonus_rows()
    last = rows[-1]
    _bonuses(job, DATA_DIR / BONUS)
    again = [last["workerId"], last["assignmentId"], last["bonusAmount"], "more than 20 hits"]  # a prefix, even
    path = _write(tmp_path / "second.csv", list(last), [list(last.values()), again])

    report = _bonuses(job, path)

    paid = Decimal(last["bonusAmount"])
    assert (report["bonuses_booked"], report["already_booked"], Decimal(report["amount_booked"])) == (1, 1, paid)
    assert _sum(kind=CostKind.BONUS, reference=last["assignmentId"]) == 2 * paid
    assert _sum(kind=CostKind.MARKETPLACE_FEE, reference=last["assignmentId"]) == 2 * _fee(paid)


def test_a_nul_byte_is_refused_naming_its_line_and_nothing_is_written(tmp_path: Path) -> None:
    job = _job()
    lines = _real_text().split("\r\n")
    lines[4] = lines[4].replace("quality", "qual\x00ity")  # line 5
    path = tmp_path / "nul_bonus.csv"
    path.write_bytes("\r\n".join(lines).encode())
    workers, events = Worker.objects.count(), AuditEvent.objects.count()

    message = _refused(job, path)

    assert "nul_bonus.csv" in message and "NUL" in message and "line 5" in message
    _nothing_written(workers, events)


def test_a_file_that_is_not_utf8_is_refused_naming_the_line_of_the_first_bad_byte(tmp_path: Path) -> None:
    job = _job()
    lines = _real_text().split("\r\n")
    lines[6] = lines[6].replace("quality", "qualit\xe9")  # line 7, in Latin-1
    path = tmp_path / "latin1_bonus.csv"
    path.write_bytes("\r\n".join(lines).encode("latin-1"))
    workers, events = Worker.objects.count(), AuditEvent.objects.count()

    message = _refused(job, path)

    assert "latin1_bonus.csv" in message and "not UTF-8" in message and "line 7" in message and "0xe9" in message
    _nothing_written(workers, events)
