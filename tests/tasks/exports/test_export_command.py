"""python manage.py export_labels / snapshot_labels."""

from __future__ import annotations

import csv
import io
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


@pytest.mark.parametrize(("fmt", "message"), [("coco", "COCO export needs box or polygon labels")])
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


def test_mturk_results_export_through_export_labels(tmp_path: Path) -> None:
    from tasks.services.mturk_results.exporter import export_mturk_results
    from tasks.services.mturk_results.importer import import_mturk_results
    from workforce.audit import Actor

    data = (
        b"HITId,AssignmentId,WorkerId,AssignmentStatus,AcceptTime,SubmitTime,Input.text,Answer.sentiment\r\n"
        b"H1,A1,W1,Approved,2024-01-01T10:00:00Z,2024-01-01T10:01:00Z,good,pos\r\n"
        b"H1,A2,W2,Submitted,2024-01-01T10:00:00Z,2024-01-01T10:02:00Z,good,neg\r\n"
    )
    result = import_mturk_results(data=data, filename="b.csv", actor=Actor.system("test"), new_job_name="batch")
    job = Job.objects.get(pk=result.job)
    out = tmp_path / "results.csv"
    with pytest.raises(CommandError, match="worker ids") as refused:
        call_command("export_labels", "--job", str(job.pk), "--format", "mturk", "--output", str(out))
    assert refused.value.returncode == 2 and not out.exists()
    call_command("export_labels", "--job", str(job.pk), "--format", "mturk", "--output", str(out), "--worker-ids")
    direct = io.StringIO(newline="")
    export_mturk_results(job, direct)
    assert out.read_bytes() == direct.getvalue().encode()
    rows = list(csv.DictReader(out.open(newline="")))
    assert {(r["AssignmentId"], r["Answer.sentiment"]) for r in rows} == {("A1", "pos"), ("A2", "neg")}


def test_worker_ids_are_pseudonymised_unless_asked_for(labeled_job: Job, tmp_path: Path) -> None:
    import json as _json

    from workforce.models import Worker
    from workforce.privacy import mask_worker_id

    masked, plain = tmp_path / "masked.jsonl", tmp_path / "plain.jsonl"
    call_command(
        "export_labels", "--job", str(labeled_job.pk), "--format", "jsonl", "--output", str(masked), "--answers"
    )
    call_command(
        "export_labels",
        "--job",
        str(labeled_job.pk),
        "--format",
        "jsonl",
        "--output",
        str(plain),
        "--answers",
        "--worker-ids",
    )
    ids = set(Worker.objects.filter(answers__job=labeled_job).values_list("external_id", flat=True))

    def exported(path: Path) -> set[str]:
        rows = [_json.loads(line) for line in path.read_text().splitlines()]
        return {answer["worker"] for row in rows for answer in row["answers"]}

    assert exported(plain) == ids
    assert exported(masked) == {mask_worker_id(i) for i in ids}
    assert not exported(masked) & ids
