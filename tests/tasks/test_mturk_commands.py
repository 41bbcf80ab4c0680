"""import_mturk_results / export_mturk_results: thin commands, JSON report, exit code 2 on bad input."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tasks.models import Assignment, CostEntry, Job
from tests.factories import JobFactory
from tests.tasks.services.mturk_fixtures import DATA_DIR, RADIO, real_file

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def failing(*args: str) -> CommandError:
    with pytest.raises(CommandError) as caught:
        call_command(*args, stdout=io.StringIO())
    assert caught.value.returncode == 2
    return caught.value


def test_it_imports_a_real_file_into_a_new_job_and_reports_json(tmp_path: Path) -> None:
    real_file("p808_Batch_3824355_batch_results.csv")
    path = str(DATA_DIR / "p808_Batch_3824355_batch_results.csv")
    report = json.loads(
        run("import_mturk_results", "--new-job", "P808", path, "--answer-field", "Answer.8_hearing", "--json")
    )
    assert {"job", "rows", "assignments_created", "workers_created", "items_created", "rows_skipped"} <= set(report)
    assert (report["rows"], report["assignments_created"], report["workers_created"], report["items_created"]) == (
        349,
        349,
        349,
        1,
    )
    assert report["consensus"]["answers"] == 349
    again = json.loads(run("import_mturk_results", "--job", str(report["job"]), path, "--json"))
    assert (again["assignments_created"], again["workers_created"], again["items_created"]) == (0, 0, 0)


def test_it_exports_and_the_export_imports_into_a_new_job(tmp_path: Path) -> None:
    source = tmp_path / "batch.csv"
    source.write_bytes(RADIO.encode())
    job_id = json.loads(run("import_mturk_results", "--new-job", "sentiment", str(source), "--json"))["job"]
    output = tmp_path / "out.csv"
    assert "Wrote 4 result row(s)" in run("export_mturk_results", "--job", str(job_id), "--output", str(output))
    exported = {row["AssignmentId"]: row["Answer.sentiment.positive"] for row in csv.DictReader(output.open())}
    assert exported == {"A1": "true", "A2": "true", "A3": "false", "A4": "false"}
    before = sorted(Assignment.objects.values_list("external_id", "state", "answers__value"))
    CostEntry.objects.all().delete()  # the imported history's charges, which protect the job (a clean slate)
    Job.objects.all().delete()
    text = run("import_mturk_results", "--new-job", "copy", str(output))
    assert "4 new assignment(s)" in text and "0 row(s) skipped" in text
    assert re.search(r"Consensus \(\w+\): \d+ item\(s\) labelled from 4 answer\(s\), mean confidence \d\.\d\d\.", text)
    assert sorted(Assignment.objects.values_list("external_id", "state", "answers__value")) == before


def test_bad_input_exits_2_with_one_sentence(tmp_path: Path) -> None:
    bonus = tmp_path / "bonus.csv"
    bonus.write_text("workerId,assignmentId,bonusAmount,reason\nW1,A1,5.06,good\n")
    assert "not an MTurk results file" in str(failing("import_mturk_results", "--new-job", "x", str(bonus)))
    assert "not a readable file" in str(failing("import_mturk_results", "--new-job", "x", str(tmp_path / "no.csv")))
    assert "no job with id 999" in str(failing("import_mturk_results", "--job", "999", str(bonus)))
    assert "non-empty name" in str(failing("import_mturk_results", "--new-job", " ", str(bonus)))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    assert "empty" in str(failing("import_mturk_results", "--new-job", "x", str(empty)))
    ambiguous = tmp_path / "two.csv"
    ambiguous.write_text("HITId,AssignmentId,WorkerId,AssignmentStatus,Answer.a,Answer.b\nH,A,W,Submitted,x,y\n")
    assert "--answer-field" in str(failing("import_mturk_results", "--new-job", "x", str(ambiguous)))
    job = JobFactory()
    assert "no job with id 999" in str(failing("export_mturk_results", "--job", "999", "--output", str(tmp_path / "o")))
    assert "Cannot write" in str(failing("export_mturk_results", "--job", str(job.pk), "--output", str(tmp_path)))
    assert not Job.objects.exclude(pk=job.pk).exists()
