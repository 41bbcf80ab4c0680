"""Ops audit findings 1-3: a damaged MTurk results file (a row cut short, a download cut off, a stray quote,
one AssignmentId on two lines) is refused whole with exit code 2 naming the line, and nothing is written."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tasks.models import Answer, Assignment, Item, Job, RawResult
from tests.tasks.services.mturk_fixtures import DATA_DIR, real_file
from workforce.models import Worker

pytestmark = pytest.mark.django_db
BATCH = "p808_Batch_3824355_batch_results.csv"  # 54 columns; every row lacks only its Approve/Reject cells
SMALL = "p808_Batch_256535_batch_results.csv"  # 2 rows, unquoted


def _small_path() -> str:
    real_file(SMALL)  # skips the test when the real files are not here
    return str(DATA_DIR / SMALL)


def _rows(name: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(real_file(name).decode("utf-8-sig"), newline="")))


def _write(path: Path, rows: list[list[str]]) -> Path:
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def _refused(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        call_command("import_mturk_results", *args, stdout=io.StringIO())
    assert caught.value.returncode == 2
    return str(caught.value)


def _nothing_written() -> bool:
    return not (Job.objects.exists() or Assignment.objects.exists() or Item.objects.exists() or Worker.objects.exists())


def _run(*args: str) -> dict[str, object]:
    out = io.StringIO()
    call_command("import_mturk_results", *args, "--json", stdout=out)
    report: dict[str, object] = json.loads(out.getvalue())
    return report


def test_a_row_cut_short_inside_its_answers_is_refused_naming_the_line(tmp_path: Path) -> None:
    rows = _rows(BATCH)
    rows[100] = rows[100][:41]  # data row 100 (file line 101) cut after field 41 of 54, at a cell boundary
    path = _write(tmp_path / "cut.csv", rows)
    message = _refused("--new-job", "t", "--answer-field", "8_hearing", str(path))
    assert "line 101: 41 fields but the header has 54" in message
    assert _nothing_written()


def test_a_download_cut_off_mid_file_is_refused_and_skip_bad_rows_imports_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "trunc.csv"
    path.write_bytes(real_file(BATCH)[:150000])
    message = _refused("--new-job", "x", "--answer-field", "8_hearing", str(path))
    assert "line 205" in message and "nothing was imported" in message
    assert _nothing_written()
    report = _run("--new-job", "x", "--answer-field", "8_hearing", "--skip-bad-rows", str(path))
    assert report["assignments_created"] == 203 == Assignment.objects.count()
    skipped = report["rows_skipped"]
    assert isinstance(skipped, list) and [row["line"] for row in skipped] == [205]


def test_a_stray_quote_is_refused_naming_its_line(tmp_path: Path) -> None:
    text = real_file(BATCH).decode("utf-8-sig").split("\n")
    assert '"Submitted"' in text[50]
    text[50] = text[50].replace('"Submitted"', '"Submit"ted"', 1)
    path = tmp_path / "quote.csv"
    path.write_text("\n".join(text), encoding="utf-8")
    message = _refused("--new-job", "x", "--answer-field", "8_hearing", str(path))
    assert "line 51" in message
    assert _nothing_written()


def test_a_damaged_file_writes_nothing_into_an_existing_job(tmp_path: Path) -> None:
    job_id = _run(
        "--new-job", "p", "--answer-field", "8_hearing", "--labels", "normal,mid,moderate,severe", _small_path()
    )["job"]
    rows = _rows(BATCH)
    rows[10] = rows[10][:30]
    path = _write(tmp_path / "cut.csv", rows)
    before = (Assignment.objects.count(), Answer.objects.count(), Item.objects.count(), Worker.objects.count())
    assert "line 11: 30 fields but the header has 54" in _refused("--job", str(job_id), str(path))
    assert (Assignment.objects.count(), Answer.objects.count(), Item.objects.count(), Worker.objects.count()) == before


def test_one_assignment_id_on_two_lines_with_other_content_is_refused_naming_both(tmp_path: Path) -> None:
    rows = _rows(SMALL)
    header = rows[0]
    other = list(rows[1])
    other[header.index("WorkerId")] = "AFAKEWORKER01"
    path = _write(tmp_path / "dup.csv", [*rows, other])
    message = _refused(
        "--new-job", "dup", "--answer-field", "8_hearing", "--labels", "normal,mid,moderate,severe", str(path)
    )
    assignment = rows[1][header.index("AssignmentId")]
    assert f"line 4: AssignmentId {assignment} is also on line 2" in message
    assert _nothing_written()


def test_a_row_repeated_verbatim_is_imported_once(tmp_path: Path) -> None:
    rows = _rows(SMALL)
    path = _write(tmp_path / "twice.csv", [*rows, rows[1]])
    report = _run(
        "--new-job", "dup", "--answer-field", "8_hearing", "--labels", "normal,mid,moderate,severe", str(path)
    )
    assert (report["rows"], report["assignments_created"], report["rows_skipped"]) == (3, 2, [])
    assert Assignment.objects.count() == 2


def test_a_reimport_repairs_answer_fields_a_damaged_earlier_import_left_empty(tmp_path: Path) -> None:
    report = _run(
        "--new-job", "p", "--answer-field", "8_hearing", "--labels", "normal,mid,moderate,severe", _small_path()
    )
    raw = RawResult.objects.order_by("pk").first()
    assert raw is not None and raw.answers["num1"]
    whole = dict(raw.answers)
    raw.answers = {**whole, "num1": "", "num2": ""}  # what the old reader kept from a row cut short
    raw.save(update_fields=["answers"])
    again = _run("--job", str(report["job"]), _small_path())
    raw.refresh_from_db()
    assert raw.answers == whole and again["raw_results_refreshed"] == 1
