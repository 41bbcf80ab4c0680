"""python manage.py export_labels / snapshot_labels."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from tasks.models import DatasetVersion, Job, LabelExport
from tasks.services.exports import request_label_export
from workforce.audit import Actor

pytestmark = pytest.mark.django_db


def test_export_labels_writes_a_csv_file(labeled_job: Job, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "labels.csv"
    call_command("export_labels", "--job", str(labeled_job.pk), "--format", "csv", "--output", str(out), "--cost")
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 4 and rows[0]["cost_usd"] == "0.2100"
    assert "Wrote 4 label(s)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("fmt", "message"),
    [("mturk", "not available yet"), ("coco", "COCO export needs box or polygon labels")],
)
def test_unavailable_formats_exit_2_and_leave_no_file(labeled_job: Job, tmp_path: Path, fmt: str, message: str) -> None:
    out = tmp_path / "labels.out"
    with pytest.raises(CommandError, match=message) as excinfo:
        call_command("export_labels", "--job", str(labeled_job.pk), "--format", fmt, "--output", str(out))
    assert excinfo.value.returncode == 2
    assert list(tmp_path.iterdir()) == []


def test_unknown_job_and_version_exit_2(labeled_job: Job, tmp_path: Path) -> None:
    out = str(tmp_path / "x.csv")
    with pytest.raises(CommandError, match="no job with id") as excinfo:
        call_command("export_labels", "--job", "999999", "--format", "csv", "--output", out)
    assert excinfo.value.returncode == 2
    with pytest.raises(CommandError, match="no dataset version 3"):
        call_command(
            "export_labels", "--job", str(labeled_job.pk), "--format", "csv", "--output", out, "--version", "3"
        )


def test_snapshot_then_export_the_version(labeled_job: Job, tmp_path: Path) -> None:
    call_command("snapshot_labels", "--job", str(labeled_job.pk), "--note", "v1 for CI")
    version = DatasetVersion.objects.get(job=labeled_job)
    out = tmp_path / "v1.jsonl"
    call_command(
        "export_labels", "--job", str(labeled_job.pk), "--format", "jsonl", "--output", str(out), "--version", "1"
    )
    assert len(out.read_bytes().splitlines()) == version.row_count == 4


def test_a_background_export_records_progress_and_its_file(
    labeled_job: Job, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        export = request_label_export(job=labeled_job, fmt="jsonl", actor=Actor.system("tests"))
    export.refresh_from_db()
    assert export.state == "done"
    assert (export.rows_done, export.rows_total, export.percent) == (4, 4, 100)
    assert len(export.file.open("rb").read().splitlines()) == 4


def test_a_background_export_that_fails_records_the_reason(labeled_job: Job) -> None:
    from tasks.models import ConsensusLabel

    export = LabelExport.objects.create(job=labeled_job, format="csv", created_at=labeled_job.created_at)
    ConsensusLabel.objects.filter(job=labeled_job).delete()
    from tasks.services.exports import run_label_export

    run_label_export(export=export, actor=Actor.system("tests"))
    export.refresh_from_db()
    assert export.state == "failed"
    assert "no consensus labels" in export.error
