"""A later MTurk batch whose answers use a label the first batch never showed: a job holding imported history
only grows its label set (appended, audited, reported); any other job refuses the file whole, naming the labels,
unless --skip-unknown-labels imports the other rows."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from tasks.models import Answer, Assignment, Hit, Item, Job, JobState
from tasks.services.errors import ServiceError
from tasks.services.mturk_results import import_mturk_results
from tests.factories import JobFactory
from tests.tasks.services.mturk_fixtures import CHECKBOXES, DATA_DIR, real_file
from workforce.audit import Actor
from workforce.models import AuditEvent, Marketplace

pytestmark = pytest.mark.django_db
BATCH = "p808_Batch_3824355_batch_results.csv"  # Answer.8_hearing: mid, moderate, normal, severe
SMALL = "p808_Batch_256535_batch_results.csv"  # Answer.4_ld: in-ear, over-ear|ex-ls (multi-label)
HEARING = ["mid", "moderate", "normal", "severe"]
ACTOR = Actor.system("test new labels")


def _rows(name: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(real_file(name).decode("utf-8-sig"), newline="")))


def _later_batch(path: Path, name: str, field: str, values: list[str]) -> Path:
    """A second batch from ``name``'s header and first rows: new HITs, assignments and workers answering
    ``Answer.<field>`` with ``values``, one row each."""
    rows = _rows(name)
    header = rows[0]
    out = [header]
    for n, value in enumerate(values):
        row = list(rows[1 + n % (len(rows) - 1)])
        row[header.index("HITId")] = f"3LATERHIT{n:04d}"
        row[header.index("AssignmentId")] = f"3LATERASSIGNMENT{n:04d}"
        row[header.index("WorkerId")] = f"ALATERWORKER{n:04d}"
        row[header.index(f"Answer.{field}")] = value
        out.append(row)
    text = io.StringIO()
    csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerows(out)
    path.write_text(text.getvalue(), encoding="utf-8")
    return path


def _run(*args: str) -> tuple[dict[str, Any], str]:
    out = io.StringIO()
    call_command("import_mturk_results", *args, "--json", stdout=out)
    report: dict[str, Any] = json.loads(out.getvalue())
    return report, out.getvalue()


def _refused(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        call_command("import_mturk_results", *args, stdout=io.StringIO())
    assert caught.value.returncode == 2
    return str(caught.value)


def _first_batch() -> Job:
    real_file(BATCH)
    report, _ = _run("--new-job", "P808 screening", "--answer-field", "8_hearing", str(DATA_DIR / BATCH))
    job = Job.objects.get(pk=report["job"])
    assert job.labels == HEARING and job.marketplace == Marketplace.MTURK and job.state == JobState.DRAFT
    return job


def _counts() -> tuple[int, int, int, int]:
    return Assignment.objects.count(), Answer.objects.count(), Item.objects.count(), AuditEvent.objects.count()


def test_a_later_batch_with_new_labels_extends_an_imported_jobs_label_set(tmp_path: Path) -> None:
    job = _first_batch()
    later = _later_batch(tmp_path / "later.csv", BATCH, "8_hearing", ["profound", "normal", "deaf", "profound"])
    out = io.StringIO()
    call_command("import_mturk_results", "--job", str(job.pk), str(later), stdout=out)
    assert "Added label(s) deaf, profound to job" in out.getvalue()
    job.refresh_from_db()
    assert job.labels == [*HEARING, "deaf", "profound"]  # the first batch's order kept, the new ones appended
    values = dict(
        Answer.objects.filter(assignment__external_id__startswith="3LATER").values_list(
            "assignment__external_id", "value"
        )
    )
    assert values == {
        "3LATERASSIGNMENT0000": "profound",
        "3LATERASSIGNMENT0001": "normal",
        "3LATERASSIGNMENT0002": "deaf",
        "3LATERASSIGNMENT0003": "profound",
    }
    event = AuditEvent.objects.get(action="job.labels_extended")
    assert event.object_id == str(job.pk)
    assert event.before == {"labels": HEARING}
    assert event.after["labels"] == [*HEARING, "deaf", "profound"] and event.after["added"] == ["deaf", "profound"]
    actions = list(AuditEvent.objects.filter(object_id=str(job.pk)).order_by("pk").values_list("action", flat=True))
    # The extension comes before the import it belongs to (one transaction).
    assert actions.index("job.labels_extended") < len(actions) - 1 - actions[::-1].index("mturk_results.imported")


def test_the_result_lists_the_added_labels_and_a_reimport_adds_none(tmp_path: Path) -> None:
    job = _first_batch()
    later = _later_batch(tmp_path / "later.csv", BATCH, "8_hearing", ["profound", "mid"])
    report, _ = _run("--job", str(job.pk), str(later))
    assert (report["labels_added"], report["assignments_created"], report["rows_skipped"]) == (["profound"], 2, [])
    again, _ = _run("--job", str(job.pk), str(later))
    assert (again["labels_added"], again["assignments_created"]) == ([], 0)
    assert AuditEvent.objects.filter(action="job.labels_extended").count() == 1


def test_a_multilabel_batch_with_a_new_label_extends_the_job(tmp_path: Path) -> None:
    real_file(SMALL)
    first, _ = _run("--new-job", "ld", "--answer-field", "4_ld", str(DATA_DIR / SMALL))
    job = Job.objects.get(pk=first["job"])
    assert job.is_multilabel and job.labels == ["ex-ls", "in-ear", "over-ear"]
    later = _later_batch(tmp_path / "later.csv", SMALL, "4_ld", ["headset|in-ear", "over-ear"])
    report, _ = _run("--job", str(job.pk), str(later))
    assert (report["labels_added"], report["assignments_created"], report["rows_skipped"]) == (["headset"], 2, [])
    job.refresh_from_db()
    assert job.labels == ["ex-ls", "in-ear", "over-ear", "headset"]
    assert Answer.objects.get(assignment__external_id="3LATERASSIGNMENT0000").value == ["in-ear", "headset"]


def test_a_check_box_batch_with_a_new_box_ticked_extends_the_job() -> None:
    first = import_mturk_results(data=CHECKBOXES.encode(), filename="b1.csv", actor=ACTOR, new_job_name="tags")
    job = Job.objects.get(pk=first.job)
    assert job.labels == ["cat", "dog", "bird"]
    later = (
        "HITId,AssignmentId,WorkerId,AssignmentStatus,Input.image_url,"
        "Answer.tags.cat,Answer.tags.dog,Answer.tags.bird,Answer.tags.fish\n"
        "H7,A7,W1,Submitted,https://x/7.jpg,on,,,on\n"
        "H7,A8,W2,Submitted,https://x/7.jpg,,on,,\n"
    )
    result = import_mturk_results(data=later.encode(), filename="b2.csv", actor=ACTOR, job=job)
    assert (result.labels_added, result.assignments_created, result.rows_skipped) == (["fish"], 2, [])
    assert Job.objects.get(pk=job.pk).labels == ["cat", "dog", "bird", "fish"]
    assert Answer.objects.get(assignment__external_id="A7").value == ["cat", "fish"]


def test_a_published_job_refuses_the_file_naming_the_labels_and_skip_unknown_labels_imports_the_rest(
    tmp_path: Path,
) -> None:
    job = _first_batch()
    Job.objects.filter(pk=job.pk).update(state=JobState.PUBLISHED, published_at=timezone.now())
    later = _later_batch(tmp_path / "later.csv", BATCH, "8_hearing", ["profound", "normal"])
    before = _counts()
    message = _refused("--job", str(job.pk), str(later))
    assert "label(s) 'profound' that job" in message and "workers use its label set" in message
    assert "Nothing was imported" in message and "--new-job" in message and "--skip-unknown-labels" in message
    assert _counts() == before and Job.objects.get(pk=job.pk).labels == HEARING
    assert "--skip-unknown-labels" in _refused("--job", str(job.pk), str(later), "--skip-bad-rows")
    report, _ = _run("--job", str(job.pk), str(later), "--skip-unknown-labels")
    assert (report["labels_added"], report["assignments_created"]) == ([], 1)
    assert [(row["line"], row["assignment"]) for row in report["rows_skipped"]] == [(2, "3LATERASSIGNMENT0000")]
    assert Job.objects.get(pk=job.pk).labels == HEARING


def test_a_hand_made_draft_job_refuses_the_file_and_says_to_add_the_labels(tmp_path: Path) -> None:
    job = JobFactory(labels=HEARING, answer_field="8_hearing")
    later = _later_batch(tmp_path / "later.csv", BATCH, "8_hearing", ["profound"])
    message = _refused("--job", str(job.pk), str(later))
    assert "its marketplace is internal" in message and "add them to the job's labels" in message
    assert not Assignment.objects.exists() and not Item.objects.exists()


def test_a_hand_made_mturk_draft_with_no_imported_results_keeps_its_labels(tmp_path: Path) -> None:
    job = JobFactory(labels=HEARING, answer_field="8_hearing", marketplace=Marketplace.MTURK)
    later = _later_batch(tmp_path / "later.csv", BATCH, "8_hearing", ["profound"])
    assert "holds no imported results yet" in _refused("--job", str(job.pk), str(later))
    assert Job.objects.get(pk=job.pk).labels == HEARING
    assert not Assignment.objects.exists()


def test_an_imported_job_with_hits_of_its_own_keeps_its_labels(tmp_path: Path) -> None:
    job = _first_batch()
    Hit.objects.create(job=job, assignments_wanted=1)  # built for our own pool
    later = _later_batch(tmp_path / "later.csv", BATCH, "8_hearing", ["profound"])
    assert "Hits of its own" in _refused("--job", str(job.pk), str(later))
    assert Job.objects.get(pk=job.pk).labels == HEARING
    assert not AuditEvent.objects.filter(action="job.labels_extended").exists()


def test_a_new_job_whose_given_labels_miss_an_answer_is_refused_whole() -> None:
    real_file(BATCH)
    path = str(DATA_DIR / BATCH)
    args = ("--new-job", "p", "--answer-field", "8_hearing", "--labels", "normal,mid,moderate")
    message = _refused(*args, path)
    assert "label(s) 'severe' that --labels does not list" in message and "add them to --labels" in message
    assert not Job.objects.exists() and not Assignment.objects.exists()
    report, _ = _run(*args, "--skip-unknown-labels", path)
    assert report["rows_skipped"] and all("severe" in row["reason"] for row in report["rows_skipped"])
    assert Job.objects.get(pk=report["job"]).labels == ["normal", "mid", "moderate"]


def test_a_field_that_would_grow_past_fifty_labels_is_refused_as_free_text() -> None:
    first = (
        "HITId,AssignmentId,WorkerId,AssignmentStatus,Answer.mood\nH1,A1,W1,Submitted,happy\nH1,A2,W2,Submitted,sad\n"
    )
    job = Job.objects.get(
        pk=import_mturk_results(data=first.encode(), filename="a.csv", actor=ACTOR, new_job_name="m").job
    )
    rows = "".join(f"H{n + 2},B{n},V{n},Submitted,word{n}\n" for n in range(60))
    with pytest.raises(ServiceError, match="more than 50, so the field looks like free text"):
        import_mturk_results(
            data=f"HITId,AssignmentId,WorkerId,AssignmentStatus,Answer.mood\n{rows}".encode(),
            filename="b.csv",
            actor=ACTOR,
            job=job,
        )
    assert Job.objects.get(pk=job.pk).labels == ["happy", "sad"]
    assert Assignment.objects.count() == 2
