"""audit_export: CSV cells a spreadsheet would run are neutralised, the export filters by end date, action,
object and actor, refuses bad filters with exit code 2, and streams to the command's own stdout."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from workforce.audit import Actor, QueuedEvent, record_audit_event, record_audit_events
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
SYS = Actor.system("tests")
FORMULAS = ["=1+1", "+SUM(A1)", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]


def _export(*args: str) -> str:
    out = io.StringIO()
    call_command("audit_export", "--since", "2000-01-01", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _actions(jsonl: str) -> list[str]:
    return [json.loads(line)["action"] for line in jsonl.splitlines()]


def test_csv_cells_that_start_like_a_formula_get_a_leading_quote_and_jsonl_keeps_them() -> None:
    for text in FORMULAS:
        record_audit_event(actor=Actor.system(text), action="t.formula", object_type="job", object_id=text, reason=text)
    rows = list(csv.DictReader(io.StringIO(_export("--format", "csv", "--action", "t.formula"))))
    for row, text in zip(rows, FORMULAS, strict=True):
        assert row["reason"] == row["actor_label"] == row["object_id"] == f"'{text}"
    cells = [cell for row in rows for cell in row.values()]
    assert not [cell for cell in cells if cell[:1] in ("=", "+", "-", "@", "\t", "\r")]
    exported = [json.loads(line) for line in _export("--action", "t.formula").splitlines()]
    assert [row["reason"] for row in exported] == FORMULAS


def test_the_export_writes_to_the_commands_stdout() -> None:
    record_audit_event(actor=SYS, action="t.one", object_type="job", object_id=1)
    assert _actions(_export()) == ["t.one"]
    assert _export("--format", "csv").startswith("id,created_at,")


def test_the_export_filters_by_action_object_and_actor() -> None:
    record_audit_events(
        [
            QueuedEvent(SYS, "t.a", "job", 1),
            QueuedEvent(SYS, "t.b", "job", 1),
            QueuedEvent(SYS, "t.a", "job", 2),
            QueuedEvent(SYS, "t.a", "worker", 1),
            QueuedEvent(Actor(kind="user", id="7", label="ops"), "t.c", "job", 1),
        ]
    )
    assert _actions(_export("--action", "t.a")) == ["t.a", "t.a", "t.a"]
    assert _actions(_export("--object-type", "job", "--object-id", "1")) == ["t.a", "t.b", "t.c"]
    assert _actions(_export("--action", "t.a", "--object-type", "worker")) == ["t.a"]
    assert _actions(_export("--actor", "ops")) == _actions(_export("--actor", "user:7")) == ["t.c"]
    assert _export("--actor", "worker:7") == ""


def test_the_export_filters_by_end_date_and_a_date_alone_includes_its_whole_day() -> None:
    day = datetime(2026, 3, 10, tzinfo=UTC)
    record_audit_events(
        [
            QueuedEvent(SYS, "t.before", "job", 1, created_at=day - timedelta(microseconds=1)),
            QueuedEvent(SYS, "t.morning", "job", 1, created_at=day),
            QueuedEvent(SYS, "t.night", "job", 1, created_at=day + timedelta(hours=23, minutes=59, seconds=59)),
            QueuedEvent(SYS, "t.next", "job", 1, created_at=day + timedelta(days=1)),
        ]
    )
    assert _actions(_export("--until", "2026-03-10", "--action", "t.morning")) == ["t.morning"]
    in_day = _export("--since", "2026-03-10", "--until", "2026-03-10")
    assert _actions(in_day) == ["t.morning", "t.night"]
    assert _actions(_export("--since", "2026-03-10", "--until", "2026-03-10T12:00")) == ["t.morning"]
    err = io.StringIO()
    call_command("audit_export", "--since", "2026-03-10", "--until", "2026-03-10", stdout=io.StringIO(), stderr=err)
    assert "until 2026-03-10T23:59:59.999999+00:00" in err.getvalue()
    exported = AuditEvent.objects.filter(action="audit.exported").last()
    assert exported is not None and exported.after["until"] == "2026-03-10T23:59:59.999999+00:00"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--until", "tomorrow"], "--until must be a date or time like"),
        (["--until", "9999-12-31T23:00-05:00"], "--until '9999-12-31T23:00-05:00' falls outside the years"),
        (["--since", "2026-03-10", "--until", "2026-03-09"], "--until '2026-03-09' is before --since '2026-03-10'"),
        (["--action", ""], "--action must be 1 to 64 printable characters, not ''."),
        (["--action", "a" * 65], "--action must be 1 to 64 printable characters"),
        (["--object-type", "job\x00"], "--object-type must be 1 to 64 printable characters"),
        (["--object-id", "x" * 500], "--object-id must be 1 to 64 printable characters"),
        (["--actor", "a\nb"], "--actor must be 1 to 150 printable characters"),
    ],
)
def test_a_bad_filter_exits_2_with_one_sentence_and_is_not_audited(args: list[str], message: str) -> None:
    with pytest.raises(CommandError) as info:
        call_command("audit_export", "--since", "2000-01-01", *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert info.value.returncode == 2
    assert str(info.value).startswith(message) and str(info.value).count(". ") == 0
    assert len(str(info.value)) < 200
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_the_export_to_stdout_streams_in_bounded_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fetched 100 rows at a time, 3 MB of events pass through well under 3 MB of memory."""
    from workforce.management.commands import audit_export

    monkeypatch.setattr(audit_export, "CHUNK_ROWS", 100)
    blob = "x" * 1000
    record_audit_events([QueuedEvent(SYS, "t.bulk", "job", i, after={"b": blob}) for i in range(3000)])
    path = tmp_path / "audit.jsonl"
    with path.open("w") as stdout:
        tracemalloc.start()
        call_command("audit_export", "--since", "2000-01-01", stdout=stdout, stderr=io.StringIO())
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert path.stat().st_size > 3_000_000
    assert peak < 1_000_000, peak
