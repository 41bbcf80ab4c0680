"""Migration review of the MTurk results import, findings 1-7, each shown failing first:

1. a Submitted row whose AutoApprovalTime has passed was auto-approved and paid by MTurk: approved, booked once;
2. a file without an AssignmentStatus column is refused whole, naming the column;
3. a file holding a NUL byte is refused naming the line (never a crash);
4. a file that is not UTF-8 is refused naming the line where decoding failed;
5. a re-import restates a review MTurk changed (rejected -> approved books; approved -> rejected reverses);
6. a re-import with a changed answer updates the Answer and RawResult and reports it;
7. without an id column, items of two batches with equal Input.* content are one item (numbers canonical).

Also: a Submitted imported assignment can be approved or rejected by a reviewer here.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from tasks.models import Answer, Assignment, AssignmentState, CostEntry, CostKind, Item, Job, RawResult
from tasks.services.errors import ServiceError
from tasks.services.imports import CONTENT_IDS, content_id, import_items_from_text, payload_hash
from tasks.services.mturk_results import MTurkImportResult, import_mturk_results
from tasks.services.mturk_results.reader import format_time, parse_time
from tasks.services.review import approve_assignment, reject_assignment
from tests.factories import JobFactory
from tests.marketplaces.mturk_standin import MTurkStandIn
from tests.tasks.services.mturk_fixtures import DATA_DIR, real_file
from workforce.audit import Actor
from workforce.marketplaces.mturk import MTurkMarketplace

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("test mturk import review fixes")
SCREENING = "p808_Batch_3824355_batch_results.csv"  # 349 Submitted rows, AutoApprovalTime Nov 2019, $0.05, 500/HIT
RATING = "p808_Batch_257568_batch_results.csv"  # 1 Submitted row, 22 Input.* columns, TP_ANS "5"
INPUT = "p808_row_input_librivox_publish_batch.csv"  # the rating batch's input file, TP_ANS "5.0"
HEAD = [
    "HITId",
    "AssignmentId",
    "WorkerId",
    "AssignmentStatus",
    "AcceptTime",
    "SubmitTime",
    "AutoApprovalTime",
    "ApprovalTime",
    "RejectionTime",
    "Reward",
    "MaxAssignments",
    "Input.text",
    "Answer.sentiment",
]
ACCEPTED = "Thu Nov 07 16:00:00 PST 2019"
SUBMITTED = "Thu Nov 07 16:05:00 PST 2019"
PAST = "Sun Nov 10 16:05:00 PST 2019"
LATER = "Mon Nov 11 09:00:00 PST 2019"


def _row(hit: str, assignment: str, worker: str, status: str, answer: str, **cells: str) -> dict[str, str]:
    row = dict.fromkeys(HEAD, "")
    row.update(
        HITId=hit,
        AssignmentId=assignment,
        WorkerId=worker,
        AssignmentStatus=status,
        AcceptTime=ACCEPTED,
        SubmitTime=SUBMITTED,
        Reward="$0.10",
        MaxAssignments="3",
        **{"Input.text": f"text of {hit}", "Answer.sentiment": answer},
    )
    row.update(cells)
    return row


def _csv(rows: list[dict[str, str]], header: list[str] = HEAD) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\r\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _import(data: bytes, **kwargs: Any) -> MTurkImportResult:
    kwargs.setdefault("filename", "batch.csv")
    if "job" not in kwargs:
        kwargs.setdefault("new_job_name", "sentiment")
        kwargs.setdefault("labels", ["positive", "negative"])
    return import_mturk_results(data=data, actor=ACTOR, **kwargs)


def _sum(**filters: Any) -> Decimal:
    return sum(CostEntry.objects.filter(**filters).values_list("amount", flat=True), Decimal(0))


def _refused(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        call_command("import_mturk_results", *args, stdout=io.StringIO())
    assert caught.value.returncode == 2
    return str(caught.value)


def _nothing_written() -> bool:
    return not (Job.objects.exists() or Assignment.objects.exists() or Item.objects.exists())


# 1. Submitted past its AutoApprovalTime: MTurk approved and paid it.


def test_the_real_screening_batch_past_its_auto_approval_is_imported_approved_and_its_cost_booked_once() -> None:
    data = real_file(SCREENING)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert {r["AssignmentStatus"] for r in rows} == {"Submitted"} and len(rows) == 349

    result = _import(data, new_job_name="screening", answer_field="8_hearing", labels=None)

    job = Job.objects.get(pk=result.job)
    assert Assignment.objects.filter(job=job, state=AssignmentState.APPROVED).count() == 349
    one = rows[0]
    assignment = Assignment.objects.get(external_id=one["AssignmentId"])
    assert assignment.reviewed_at == parse_time(one["AutoApprovalTime"]) is not None
    assert result.assignments_auto_approved == 349
    assert _sum(kind=CostKind.REWARD) == Decimal("17.45")  # 349 x $0.05
    assert _sum(kind=CostKind.MARKETPLACE_FEE) == Decimal("6.98")  # 40%: MaxAssignments 500
    assert result.costs["assignments_booked"] == 349
    before = sorted(CostEntry.objects.values_list("idempotency_key", "amount"))
    again = _import(data, job=job)
    assert again.costs["ledger_rows_booked"] == 0 and again.assignments_updated == 0
    assert sorted(CostEntry.objects.values_list("idempotency_key", "amount")) == before


def test_a_submitted_row_stays_submitted_and_books_nothing_while_its_auto_approval_is_ahead_or_unknown() -> None:
    future = format_time(timezone.now() + timedelta(days=2))
    data = _csv(
        [
            _row("H1", "A1", "W1", "Submitted", "positive", AutoApprovalTime=PAST),
            _row("H1", "A2", "W2", "Submitted", "negative", AutoApprovalTime=future),
            _row("H1", "A3", "W3", "Submitted", "positive"),
            _row("H1", "A4", "W4", "Approved", "positive", ApprovalTime=PAST),
        ]
    )

    result = _import(data)

    states = dict(Assignment.objects.values_list("external_id", "state"))
    assert states == {"A1": "approved", "A2": "submitted", "A3": "submitted", "A4": "approved"}
    a1 = Assignment.objects.get(external_id="A1")
    assert a1.reviewed_at == datetime(2019, 11, 11, 0, 5, tzinfo=UTC)
    booked = set(CostEntry.objects.values_list("assignment__external_id", "kind"))
    assert booked == {(a, k) for a in ("A1", "A4") for k in (CostKind.REWARD, CostKind.MARKETPLACE_FEE)}
    assert _sum(assignment__external_id="A1") == _sum(assignment__external_id="A4") == Decimal("0.12")
    assert result.costs["assignments_booked"] == 2


# 2. No AssignmentStatus column.


def test_a_file_without_an_assignment_status_column_is_refused_whole_naming_it(tmp_path: Path) -> None:
    header = [h for h in HEAD if h != "AssignmentStatus"]
    data = _csv([_row("H1", "A1", "W1", "", "positive"), _row("H1", "A2", "W2", "", "negative")], header)

    with pytest.raises(ServiceError, match="no AssignmentStatus column"):
        _import(data)
    path = tmp_path / "nostatus.csv"
    path.write_bytes(data)
    assert "AssignmentStatus" in _refused("--new-job", "x", str(path))
    assert _nothing_written()


# 3. A NUL byte.


def test_a_file_with_a_nul_byte_is_refused_naming_its_line(tmp_path: Path) -> None:
    rows = [_row("H1", "A1", "W1", "Submitted", "positive"), _row("H2", "A2", "W2", "Submitted", "negative")]
    rows[1]["Input.text"] = "bro\x00ken"
    data = _csv(rows)

    with pytest.raises(ServiceError, match=r"NUL byte on line 3"):
        _import(data)
    path = tmp_path / "nul.csv"
    path.write_bytes(data)
    message = _refused("--new-job", "x", str(path))
    assert "line 3" in message and "NUL" in message and message.endswith(".")
    assert _nothing_written()


# 4. Not UTF-8.


def test_a_latin_1_file_is_refused_naming_the_line_and_asking_for_utf_8(tmp_path: Path) -> None:
    rows = [_row("H1", "A1", "W1", "Submitted", "positive"), _row("H2", "A2", "W2", "Submitted", "negative")]
    rows[1]["Input.text"] = "caf\u00e9 cr\u00e8me"
    data = _csv(rows).decode().encode("latin-1")

    with pytest.raises(ServiceError, match=r"line 3.*must be UTF-8"):
        _import(data)
    path = tmp_path / "latin1.csv"
    path.write_bytes(data)
    message = _refused("--new-job", "x", str(path))
    assert "line 3" in message and "UTF-8" in message
    assert _nothing_written()


# 5. A review MTurk changed between two downloads.


def test_a_rejection_overridden_on_mturk_is_restated_approved_and_booked_once() -> None:
    rejected = _row("H1", "A1", "W1", "Rejected", "positive", RejectionTime=PAST)
    other = _row("H1", "A2", "W2", "Approved", "negative", ApprovalTime=PAST)
    job = Job.objects.get(pk=_import(_csv([rejected, other])).job)
    assert not CostEntry.objects.filter(assignment__external_id="A1").exists()

    approved = {**rejected, "AssignmentStatus": "Approved", "ApprovalTime": LATER}
    result = _import(_csv([approved, other]), job=job)

    a1 = Assignment.objects.get(external_id="A1")
    assert a1.state == AssignmentState.APPROVED and a1.reviewed_at == datetime(2019, 11, 11, 17, 0, tzinfo=UTC)
    assert result.assignments_updated == 1
    assert _sum(assignment=a1, kind=CostKind.REWARD) == Decimal("0.10")
    assert _sum(assignment=a1, kind=CostKind.MARKETPLACE_FEE) == Decimal("0.02")
    assert result.reviews_restated == [{"line": 2, "assignment": "A1", "before": "rejected", "after": "approved"}]
    count = CostEntry.objects.count()
    _import(_csv([approved, other]), job=job)
    assert CostEntry.objects.count() == count


def test_an_approval_restated_as_rejected_is_reversed_in_the_ledger_never_deleted() -> None:
    approved = _row("H1", "A1", "W1", "Approved", "positive", ApprovalTime=PAST)
    other = _row("H1", "A2", "W2", "Approved", "negative", ApprovalTime=PAST)
    job = Job.objects.get(pk=_import(_csv([approved, other])).job)
    booked = list(CostEntry.objects.filter(assignment__external_id="A1").values_list("id", "amount"))
    assert len(booked) == 2

    rejected = {**approved, "AssignmentStatus": "Rejected", "RejectionTime": LATER}
    result = _import(_csv([rejected, other]), job=job)

    a1 = Assignment.objects.get(external_id="A1")
    assert a1.state == AssignmentState.REJECTED
    rows = CostEntry.objects.filter(assignment=a1)
    assert set(rows.exclude(kind=CostKind.REVERSAL).values_list("id", "amount")) == set(booked)  # kept
    reversals = rows.filter(kind=CostKind.REVERSAL)
    assert sorted(reversals.values_list("reverses_id", flat=True)) == sorted(pk for pk, _ in booked)
    assert _sum(assignment=a1) == 0
    assert result.costs_reversed["assignments_reversed"] == 1 and Decimal(result.costs_reversed["amount"]) == Decimal(
        "-0.12"
    )
    assert _sum(assignment__external_id="A2") == Decimal("0.12")
    count = CostEntry.objects.count()
    _import(_csv([rejected, other]), job=job)
    assert CostEntry.objects.count() == count

    # Approved once more (an override): booked again, with new keys, once.
    again = {**approved, "ApprovalTime": "Tue Nov 12 09:00:00 PST 2019"}
    _import(_csv([again, other]), job=job)
    assert Assignment.objects.get(pk=a1.pk).state == AssignmentState.APPROVED
    assert _sum(assignment=a1) == Decimal("0.12")
    _import(_csv([again, other]), job=job)
    assert _sum(assignment=a1) == Decimal("0.12")


def test_an_older_download_does_not_undo_a_later_review() -> None:
    rejected = _row("H1", "A1", "W1", "Rejected", "positive", RejectionTime=PAST)
    other = _row("H1", "A2", "W2", "Approved", "negative", ApprovalTime=PAST)
    approved = {**rejected, "AssignmentStatus": "Approved", "ApprovalTime": LATER}
    job = Job.objects.get(pk=_import(_csv([approved, other])).job)
    result = _import(_csv([rejected, other]), job=job)
    assert Assignment.objects.get(external_id="A1").state == AssignmentState.APPROVED
    assert result.reviews_restated == [] and not CostEntry.objects.filter(kind=CostKind.REVERSAL).exists()


# 6. A changed answer.


def test_a_changed_answer_updates_the_answer_and_raw_result_and_is_reported() -> None:
    first = _row("H1", "A1", "W1", "Submitted", "positive")
    other = _row("H1", "A2", "W2", "Submitted", "negative")
    job = Job.objects.get(pk=_import(_csv([first, other])).job)

    changed = {**first, "Answer.sentiment": "negative"}
    result = _import(_csv([changed, other]), job=job)

    assert Answer.objects.get(assignment__external_id="A1").value == "negative"
    assert RawResult.objects.get(assignment__external_id="A1").answers == {"sentiment": "negative"}
    item = content_id(["text of H1"])
    assert result.answers_updated == [
        {"line": 2, "assignment": "A1", "item": item, "before": "positive", "after": "negative"}
    ]
    assert result.consensus is not None


# 7. Item identity by content, numbers canonical.


def test_two_batches_of_the_same_hit_content_share_their_items() -> None:
    first = _csv(
        [
            _row("H1", "A1", "W1", "Submitted", "positive", **{"Input.text": "great film"}),
            _row("H2", "A2", "W2", "Submitted", "negative", **{"Input.text": "awful"}),
        ]
    )
    job = Job.objects.get(pk=_import(first).job)
    second = _csv(
        [
            _row("H9", "A9", "W9", "Submitted", "positive", **{"Input.text": "great film"}),
            _row("H8", "A8", "W8", "Submitted", "negative", **{"Input.text": "a new one"}),
        ]
    )
    result = _import(second, job=job)
    assert result.items_created == 1 and Item.objects.filter(job=job).count() == 3
    shared = Answer.objects.get(assignment__external_id="A9").item
    assert shared == Answer.objects.get(assignment__external_id="A1").item


def test_numbers_compare_canonically_and_text_ids_and_hashes_stay_as_they_were() -> None:
    import hashlib
    import json

    assert content_id(["hello", "en"]) == "row-" + hashlib.sha256(b"hello\x1fen").hexdigest()[:20]
    assert content_id(["x", "5"]) == "row-" + hashlib.sha256(b"x\x1f5").hexdigest()[:20]
    assert content_id(["x", "5.0"]) == content_id(["x", "5"]) == content_id(["x", "5.00"])
    assert content_id(["x", "5.5"]) == content_id(["x", "5.50"]) != content_id(["x", "5"])
    assert content_id(["x", "05"]) != content_id(["x", "5"])  # a leading zero is text (a code, a zip)
    text = {"text": "hello", "n": "12"}
    legacy = hashlib.sha256(json.dumps(text, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert payload_hash(text) == legacy
    assert payload_hash({"TP_ANS": "5.0"}) == payload_hash({"TP_ANS": "5"})


def test_the_rating_batch_answers_the_item_its_input_file_made_though_5_0_reads_5() -> None:
    real_file(INPUT)
    data = real_file(RATING)
    layout = '<audio src="${gold_clips}"></audio><crowd-radio-group name="q1">'
    job = JobFactory(state="draft", marketplace="mturk", task_template=layout, answer_field="q1", labels=list("12345"))
    import_items_from_text(
        job=job, text=(DATA_DIR / INPUT).read_text(), filename=INPUT, actor=ACTOR, id_column=CONTENT_IDS
    )
    items = Item.objects.filter(job=job).count()
    assert items == 100

    result = _import(data, job=job)

    assert result.items_created == 0 and result.rows_skipped == [] and Item.objects.count() == items
    answer = Answer.objects.select_related("item").get(job=job)
    assert answer.item.payload["TP_ANS"] == "5.0"  # row 7 of the input file; the results file says 5
    assert answer.item.payload["Q0"].endswith("book_03318_chp_0016_reader_10043_5.wav")


def test_an_input_file_with_5_0_imported_again_keeps_the_ids_and_hashes_of_an_earlier_import() -> None:
    job = JobFactory(state="draft")
    text = "text,score\nhello,5.0\nworld,7\n"
    # As an import before numbers were canonical stored them: the legacy id and hash of the 5.0 row.
    import hashlib
    import json

    payload = {"text": "hello", "score": "5.0"}
    old_id = "row-" + hashlib.sha256(b"hello\x1f5.0").hexdigest()[:20]
    old_hash = hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    Item.objects.create(job=job, external_id=old_id, payload=payload, payload_hash=old_hash)

    result = import_items_from_text(job=job, text=text, filename="f.csv", actor=ACTOR, id_column=CONTENT_IDS)

    assert (result.created, result.unchanged) == (1, 1)
    assert Item.objects.filter(job=job).count() == 2 and Item.objects.filter(external_id=old_id).exists()


# Also: a Submitted imported assignment can be reviewed here.


def test_a_submitted_imported_assignment_can_be_approved_or_rejected_by_a_reviewer(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    future = format_time(timezone.now() + timedelta(days=2))
    rows = [
        _row("H1", "A1", "W1", "Submitted", "positive", AutoApprovalTime=future),
        _row("H1", "A2", "W2", "Submitted", "negative", AutoApprovalTime=future),
    ]
    _import(_csv(rows))
    for row in rows:
        standin.state.assignments[row["AssignmentId"]] = {
            "AssignmentId": row["AssignmentId"],
            "HITId": row["HITId"],
            "WorkerId": row["WorkerId"],
            "AssignmentStatus": "Submitted",
        }

    approved = approve_assignment(assignment=Assignment.objects.get(external_id="A1"), actor=ACTOR)
    rejected = reject_assignment(assignment=Assignment.objects.get(external_id="A2"), actor=ACTOR, feedback="no")

    assert (approved.state, rejected.state) == (AssignmentState.APPROVED, AssignmentState.REJECTED)
    assert _sum(assignment=approved, kind=CostKind.REWARD) == Decimal("0.10")
    assert not CostEntry.objects.filter(assignment=rejected).exclude(kind=CostKind.REVERSAL).exists()


def test_the_command_tells_what_mturk_approved_and_what_a_later_download_restated(tmp_path: Path) -> None:
    rejected = _row("H1", "A1", "W1", "Rejected", "positive", RejectionTime=PAST)
    auto = _row("H1", "A2", "W2", "Submitted", "negative", AutoApprovalTime=PAST)
    first = tmp_path / "first.csv"
    first.write_bytes(_csv([rejected, auto]))
    out = io.StringIO()
    call_command("import_mturk_results", "--new-job", "s", "--labels", "positive,negative", str(first), stdout=out)
    assert "1 Submitted row(s) were past their AutoApprovalTime" in out.getvalue()
    later = tmp_path / "later.csv"
    later.write_bytes(_csv([{**rejected, "AssignmentStatus": "Approved", "ApprovalTime": LATER}, auto]))
    out = io.StringIO()
    call_command("import_mturk_results", "--job", str(Job.objects.get().pk), str(later), stdout=out)
    assert "line 2: assignment A1 is approved now (was rejected)." in out.getvalue()


def test_items_an_earlier_import_named_by_hit_id_keep_their_ids_and_a_reimport_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tasks.models import HitItem
    from tasks.services.mturk_results import importer

    rows = [
        _row("H1", "A1", "W1", "Submitted", "positive", **{"Input.text": "same"}),
        _row("H2", "A2", "W2", "Submitted", "negative", **{"Input.text": "same"}),
        _row("H3", "A3", "W3", "Submitted", "negative", **{"Input.text": "other"}),
    ]
    # As the import named items before content ids: one item per HIT, named by its HITId.
    monkeypatch.setattr(importer, "find_item_ids", lambda job, rows, stored: {r.line: r.hit_id for r in rows})
    job = Job.objects.get(pk=_import(_csv(rows)).job)
    monkeypatch.undo()
    links = set(HitItem.objects.values_list("hit__external_id", "item__external_id"))
    assert links == {("H1", "H1"), ("H2", "H2"), ("H3", "H3")}

    result = _import(_csv(rows), job=job)

    assert (result.items_created, result.assignments_created, result.rows_skipped) == (0, 0, [])
    assert set(HitItem.objects.values_list("hit__external_id", "item__external_id")) == links
    assert Item.objects.count() == 3 and result.answers_updated == []
