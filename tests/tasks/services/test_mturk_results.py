"""MTurk results CSVs: every real file imports with statuses and times kept, re-import is a no-op,
the label schema is inferred from the Answer.* columns, and the export imports back to the same answers."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tasks.models import (
    Answer,
    Assignment,
    ConsensusLabel,
    CostEntry,
    GoldGrade,
    Item,
    Job,
    RawResult,
    TaskKind,
    WorkerJobScore,
)
from tasks.services.errors import ServiceError
from tasks.services.imports import content_id
from tasks.services.mturk_results import export_mturk_results, import_mturk_results
from tasks.services.mturk_results.reader import parse_time
from tests.factories import JobFactory
from tests.tasks.services.mturk_fixtures import CHECKBOXES, RADIO, REAL_RESULTS, real_file
from workforce.audit import Actor
from workforce.models import AuditEvent, Worker

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("test mturk import")
RATINGS = "p808_Batch_257568_batch_results.csv"


def _import(data: bytes | str, **kwargs: object) -> object:
    raw = data.encode() if isinstance(data, str) else data
    kwargs.setdefault("filename", "batch.csv")
    return import_mturk_results(data=raw, actor=ACTOR, **kwargs)  # type: ignore[arg-type]


def _snapshot(job: Job) -> dict[str, tuple[str, object, str, datetime | None, datetime | None, dict[str, str]]]:
    return {
        a.external_id: (
            a.worker.external_id,
            a.answers.get().value,
            a.state,
            a.accepted_at,
            a.submitted_at,
            a.raw_result.answers,
        )
        for a in Assignment.objects.filter(job=job).select_related("worker", "raw_result").prefetch_related("answers")
    }


@pytest.mark.parametrize("name", sorted(REAL_RESULTS))
def test_every_real_results_file_imports_once(name: str) -> None:
    field, labels, rows = REAL_RESULTS[name]
    data = real_file(name)
    result = _import(data, filename=name, new_job_name="P808", answer_field=field, labels=labels)
    assert (result.rows, result.assignments_created, result.rows_skipped) == (rows, rows, [])
    job = Job.objects.get(pk=result.job)
    assert job.marketplace == "mturk" and job.answer_field == field
    assert Assignment.objects.filter(job=job).count() == rows == RawResult.objects.filter(job=job).count()
    assert result.workers_created == Worker.objects.filter(marketplace="mturk").count()
    assert ConsensusLabel.objects.filter(job=job).exists()
    state = (
        Assignment.objects.count(),
        Answer.objects.count(),
        Item.objects.count(),
        Worker.objects.count(),
        AuditEvent.objects.count(),
        sorted(ConsensusLabel.objects.values_list("id", "version")),
    )
    again = _import(data, filename=name, job=job)
    assert (again.assignments_created, again.workers_created, again.items_created, again.rows_skipped) == (0, 0, 0, [])
    assert (
        Assignment.objects.count(),
        Answer.objects.count(),
        Item.objects.count(),
        Worker.objects.count(),
        AuditEvent.objects.count(),
        sorted(ConsensusLabel.objects.values_list("id", "version")),
    ) == state


def test_the_ragged_quoted_file_keeps_statuses_times_money_inputs_and_every_answer_field() -> None:
    result = _import(
        real_file(RATINGS),
        new_job_name="ratings",
        answer_field="q1",
        labels=list("12345"),
    )
    assignment = Assignment.objects.select_related("raw_result", "hit").get(
        external_id="35GCEFQ6I93Y3FGGY5K5J6ETKDRZ3V"
    )
    # Submitted in the file, but its AutoApprovalTime (Sun Nov 10 16:45:50 PST 2019) has passed: MTurk approved it.
    assert assignment.state == "approved" and assignment.reward == Decimal("0.05")
    assert assignment.reviewed_at == datetime(2019, 11, 11, 0, 45, 50, tzinfo=UTC)
    assert assignment.accepted_at == datetime(2019, 11, 8, 0, 39, 54, tzinfo=UTC)  # Thu Nov 07 16:39:54 PST
    assert assignment.submitted_at == datetime(2019, 11, 8, 0, 45, 50, tzinfo=UTC)
    assert assignment.hit.external_id == "3IYI9285XVFUTG91JANI0VYH2Z4CJ6"
    assert assignment.worker.external_id == "ARAF31KCGJ5AA"
    assert len(assignment.raw_result.answers) == 89 and assignment.raw_result.answers["tp_check"] == "0"
    assert assignment.raw_result.columns["LifetimeApprovalRate"] == "0% (0/0)"
    item = Item.objects.get(job_id=result.job)
    inputs = [
        v
        for k, v in next(csv.DictReader(io.StringIO(real_file(RATINGS).decode("utf-8-sig")))).items()
        if k.startswith("Input.")
    ]
    assert item.external_id == content_id(inputs) and len(item.payload) == 22  # no Input.id: named by its content
    assert item.payload["TP_ANS"] == "5"
    assert Answer.objects.get(job_id=result.job).value == "3"


def test_the_flat_api_dump_imports_with_its_iso_times() -> None:
    result = _import(
        real_file("p808_api_assignment_dump.csv"), new_job_name="api", answer_field="cmp1", labels=["a", "b"]
    )
    assignment = Assignment.objects.get(job_id=result.job)
    assert assignment.accepted_at == datetime(2019, 10, 28, 22, 0, 10, tzinfo=UTC)
    assert Answer.objects.get(job_id=result.job).value == "a"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("p808_row_input_librivox_publish_batch.csv", "not an MTurk results file"),
        ("p808_bonus.csv", "not an MTurk results file"),
    ],
)
def test_files_that_are_not_results_are_refused_with_one_sentence_and_nothing_written(name: str, message: str) -> None:
    with pytest.raises(ServiceError, match=message):
        _import(real_file(name), new_job_name="x")
    assert not Job.objects.exists()


def test_a_file_with_many_answer_fields_asks_which_one_is_the_label() -> None:
    with pytest.raises(ServiceError, match=r"25 answer fields; name the one .* --answer-field \(1_gender"):
        _import(real_file("p808_Batch_256535_batch_results.csv"), new_job_name="x")
    assert not Job.objects.exists()


def test_a_radio_group_becomes_a_single_label_job_and_free_text_is_kept_verbatim() -> None:
    result = _import(RADIO, new_job_name="sentiment")
    job = Job.objects.get(pk=result.job)
    assert (job.task_kind, job.labels, job.answer_field, job.redundancy) == (
        TaskKind.TEXT_CLASSIFICATION,
        ["positive", "negative"],
        "sentiment",
        3,
    )
    assert dict(Answer.objects.values_list("assignment__external_id", "value")) == {
        "A1": "positive",
        "A2": "positive",
        "A3": "negative",
        "A4": "negative",
    }
    states = dict(Assignment.objects.values_list("external_id", "state"))
    assert states == {"A1": "approved", "A2": "submitted", "A3": "rejected", "A4": "submitted"}
    a1 = Assignment.objects.select_related("raw_result").get(external_id="A1")
    assert a1.reviewed_at == datetime(2019, 11, 8, 18, 0, tzinfo=UTC) and a1.reward == Decimal("0.10")
    assert a1.raw_result.answers["comment"] == "loved it, really"
    # PDT is seven hours behind UTC, PST eight.
    assert Assignment.objects.get(external_id="A3").accepted_at == datetime(2019, 11, 8, 0, 0, tzinfo=UTC)
    assert Item.objects.get(job=job, external_id=content_id(["awful"])).payload == {"text": "awful"}
    assert ConsensusLabel.objects.get(item__external_id=content_id(["great film"])).value == "positive"
    assert WorkerJobScore.objects.filter(job=job, agreement__isnull=False).count() == 3
    assert AuditEvent.objects.filter(action="mturk_results.imported", object_id=str(job.pk)).exists()


def test_check_boxes_become_a_multilabel_image_job() -> None:
    result = _import(CHECKBOXES, new_job_name="tags")
    job = Job.objects.get(pk=result.job)
    assert (job.task_kind, job.labels) == (TaskKind.IMAGE_MULTILABEL, ["cat", "dog", "bird"])
    values = dict(Answer.objects.values_list("assignment__external_id", "value"))
    assert values == {"A1": ["cat", "dog"], "A2": ["cat", "bird"], "A3": []}


def test_bad_rows_are_skipped_with_their_line_and_reason() -> None:
    job = JobFactory(labels=["positive", "negative"], answer_field="sentiment")
    bad = RADIO + "H3,A5,W5,Submitted,yesterday,,,$0.10,3,x,true,false,\nH3,A6,W6,Pending,,,,$0.10,3,x,true,false,\n"
    bad += "H3,A7,W7,Submitted,,,,$0.10,3,x,true,true,\nH3,A8,W8,Submitted,,,,$0.10,3,x,false,false,\n"
    result = _import(bad, job=job)
    assert result.assignments_created == 4
    reasons = {row["line"]: row["reason"] for row in result.rows_skipped}
    assert "unreadable time 'yesterday'" in reasons[6]
    assert "'Pending' is not Submitted, Approved or Rejected" in reasons[7]
    assert "2 options ticked" in reasons[8]
    assert "holds no label" in reasons[9]
    assert not Assignment.objects.filter(external_id__in=["A5", "A6", "A7", "A8"]).exists()
    assert not Item.objects.filter(payload__text="x").exists()


def test_answers_outside_a_hand_made_jobs_labels_refuse_the_file_or_with_skip_unknown_labels_are_skipped() -> None:
    job = JobFactory(labels=["yes", "no"], answer_field="sentiment")
    with pytest.raises(ServiceError, match=r"label\(s\) 'negative', 'positive' that job \d+ does not have"):
        _import(RADIO, job=job)
    assert not Item.objects.exists() and not Assignment.objects.exists()
    with pytest.raises(ServiceError, match="--skip-unknown-labels"):
        _import(RADIO, job=job, skip_bad_rows=True)  # damaged rows are another matter
    result = _import(RADIO, job=job, skip_unknown_labels=True)
    assert result.assignments_created == 0 and len(result.rows_skipped) == 4
    assert result.rows_skipped[0]["reason"] == "sentiment ticks positive, which is not one of the job's labels"
    plain = "HITId,AssignmentId,WorkerId,AssignmentStatus,Answer.sentiment\nH9,A9,W9,Submitted,maybe\n"
    reason = _import(plain, job=job, skip_unknown_labels=True).rows_skipped[0]["reason"]
    assert reason == "Choose one of the job's labels (yes, no), not 'maybe'"
    assert not Item.objects.exists() and not Assignment.objects.exists()


def test_a_later_download_moves_statuses_on() -> None:
    result = _import(RADIO, new_job_name="sentiment")
    approved = RADIO.replace(
        "H1,A2,W2,Submitted,Thu Nov 07 17:00:00 PST 2019,Thu Nov 07 17:01:00 PST 2019,,",
        "H1,A2,W2,Approved,Thu Nov 07 17:00:00 PST 2019,Thu Nov 07 17:01:00 PST 2019,Sat Nov 09 10:00:00 PST 2019,",
    )
    again = _import(approved, job=Job.objects.get(pk=result.job))
    assert (again.assignments_created, again.assignments_updated) == (0, 1)
    a2 = Assignment.objects.select_related("raw_result").get(external_id="A2")
    assert a2.state == "approved" and a2.raw_result.columns["ApprovalTime"] == "Sat Nov 09 10:00:00 PST 2019"


def test_work_already_in_another_job_is_reported_and_no_empty_job_is_left() -> None:
    _import(RADIO, new_job_name="first")
    with pytest.raises(ServiceError, match=r"no job was created .*belongs to job"):
        _import(RADIO, new_job_name="second")
    assert Job.objects.count() == 1


def _export(job: Job) -> str:
    stream = io.StringIO(newline="")
    export_mturk_results(job, stream)
    return stream.getvalue()


def test_export_writes_the_requester_ui_columns_and_reimports_to_the_same_answers() -> None:
    data = real_file("p808_Batch_3824355_batch_results.csv")
    first = Job.objects.get(pk=_import(data, new_job_name="qual", answer_field="8_hearing").job)
    before = _snapshot(first)
    text = _export(first)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 349 and text.endswith("\r\n")
    original = next(csv.DictReader(io.StringIO(data.decode())))
    exported = next(r for r in rows if r["AssignmentId"] == original["AssignmentId"])
    for column in ("HITId", "WorkerId", "Reward", "Title", "Answer.4_ld", "Answer.num5"):
        assert exported[column] == original[column]
    # Submitted in the file, past its AutoApprovalTime: MTurk approved it then.
    assert (original["AssignmentStatus"], exported["AssignmentStatus"]) == ("Submitted", "Approved")
    assert parse_time(exported["ApprovalTime"]) == parse_time(original["AutoApprovalTime"])
    CostEntry.objects.all().delete()  # the history's charges, which protect the job (a clean slate)
    first.delete()  # MTurk ids are global: the copy goes into a new job once the old one is gone
    second = Job.objects.get(pk=_import(text, new_job_name="copy", answer_field="8_hearing").job)
    assert _snapshot(second) == before
    assert second.labels == first.labels


def test_work_done_here_exports_its_label_in_the_answer_field() -> None:
    result = _import(CHECKBOXES, new_job_name="tags")
    job = Job.objects.get(pk=result.job)
    RawResult.objects.all().delete()  # as if the work had been done in the internal pool
    job.answer_field = "animals"
    job.save()
    rows = list(csv.DictReader(io.StringIO(_export(job))))
    assert {r["AssignmentId"]: r["Answer.animals"] for r in rows} == {"A1": "cat|dog", "A2": "cat|bird", "A3": ""}
    assert rows[0]["Input.image_url"] == "https://x/1.jpg" and rows[0]["Title"] == job.name


def test_an_input_gold_column_makes_gold_items_whose_answers_are_graded_and_kept_out_of_consensus() -> None:
    lines = RADIO.splitlines()
    header = lines[0].replace("Input.text,", "Input.text,Input.gold,")
    rows = [line.replace("great film,", "great film,positive,").replace("awful,", "awful,,") for line in lines[1:]]
    result = _import("\n".join([header, *rows]) + "\n", new_job_name="sentiment")
    gold = Item.objects.get(payload__text="great film")
    assert (gold.is_gold, gold.gold_answer, gold.payload) == (True, "positive", {"text": "great film"})
    grades = dict(GoldGrade.objects.values_list("worker__external_id", "score"))
    assert grades == {"W1": 1.0, "W2": 1.0, "W3": 0.0}
    assert list(ConsensusLabel.objects.values_list("item__payload__text", flat=True)) == ["awful"]
    assert WorkerJobScore.objects.get(job_id=result.job, worker__external_id="W3").gold_answers == 1
    exported = list(csv.DictReader(io.StringIO(_export(Job.objects.get(pk=result.job)))))
    assert {r["AssignmentId"]: r["Input.gold"] for r in exported} == {
        "A1": "positive",
        "A2": "positive",
        "A3": "positive",
        "A4": "",
    }
