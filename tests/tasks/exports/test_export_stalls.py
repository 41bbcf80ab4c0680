"""Background exports whose worker dies, and the beat sweep: a running export with no sign of life is queued
again (at most three runs, then failed with a sentence), a slow run that was replaced cannot overwrite the
newer run's result, and a queued export is sent to the queue again only once per requeue delay."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import pytest
from celery.app.task import Task
from django.conf import settings
from django.utils import timezone

from tasks.models import ExportState, Job, LabelExport
from tasks.services.exports import request_label_export, run_label_export
from tasks.services.exports import runs as export_runs
from tasks.services.exports.streaming import ExportResult, export_labels
from tasks.tasks import requeue_stale_exports_task, run_label_export_task
from tests.tasks.exports.conftest import SYSTEM
from workforce.models import AuditEvent

# Outside a test transaction, so on_commit hooks run as they do in a request (at once, after commit).
pytestmark = pytest.mark.django_db(transaction=True)


class WorkerKilled(BaseException):
    """What the run sees of its worker being killed mid-export: it stops, and nothing after it runs."""


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """A broker that keeps the messages it is given (no worker takes them): the list of their kwargs."""
    messages: list[dict[str, Any]] = []

    def keep(self: Any, args: Any = None, kwargs: dict[str, Any] | None = None, **options: Any) -> None:
        messages.append(dict(kwargs or {}))

    monkeypatch.setattr(Task, "apply_async", keep)
    return messages


def _asked_for(job: Job, *, ago: timedelta) -> LabelExport:
    return LabelExport.objects.create(job=job, format="csv", options={}, created_at=timezone.now() - ago)


def _killed(**kwargs: Any) -> ExportResult:
    raise WorkerKilled


def _die_while_running(export: LabelExport, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the export on a worker that is killed after claiming it (the row is left running)."""
    with monkeypatch.context() as patch:
        patch.setattr(export_runs, "export_labels", _killed)
        with pytest.raises(WorkerKilled):
            run_label_export_task(export_id=export.pk)
    export.refresh_from_db()
    assert export.state == ExportState.RUNNING


def _silent_for(export: LabelExport, seconds: int) -> None:
    """Time passes: the export's run last showed life ``seconds`` ago."""
    LabelExport.objects.filter(pk=export.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=seconds))


def _files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "media").rglob("export_*"))


def test_a_running_export_whose_worker_died_is_queued_again_and_finishes(
    labeled_job: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = _asked_for(labeled_job, ago=timedelta(hours=2))
    _die_while_running(export, monkeypatch)
    assert export.attempts == 1 and export.heartbeat_at is not None

    _silent_for(export, settings.EXPORT_STALLED_AFTER_SECONDS + 60)
    assert requeue_stale_exports_task() == 1  # eager Celery: the new run happens here and now

    export.refresh_from_db()
    assert export.state == ExportState.DONE and export.rows_done == 4 and export.file
    assert export.attempts == 2 and export.error == ""
    requeued = AuditEvent.objects.get(action="labels.export_requeued")
    assert requeued.object_id == str(labeled_job.pk) and requeued.after == {"export": export.pk, "attempts": 1}
    assert AuditEvent.objects.filter(action="labels.exported").count() == 1


def test_a_running_export_that_shows_life_is_left_alone(labeled_job: Job, sent: list[dict[str, Any]]) -> None:
    export = _asked_for(labeled_job, ago=timedelta(hours=2))
    LabelExport.objects.filter(pk=export.pk).update(state=ExportState.RUNNING, attempts=1)
    _silent_for(export, settings.EXPORT_STALLED_AFTER_SECONDS - 60)  # slow, but it wrote rows a while ago

    assert requeue_stale_exports_task() == 0
    export.refresh_from_db()
    assert (export.state, export.attempts) == (ExportState.RUNNING, 1)
    assert sent == []


def test_an_export_whose_worker_keeps_dying_fails_after_three_runs_with_a_sentence(
    labeled_job: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = _asked_for(labeled_job, ago=timedelta(hours=5))
    _die_while_running(export, monkeypatch)
    for _ in range(2):
        _silent_for(export, settings.EXPORT_STALLED_AFTER_SECONDS + 60)
        with monkeypatch.context() as patch:  # the sweep queues it again, and the next worker dies too
            patch.setattr(export_runs, "export_labels", _killed)
            with pytest.raises(WorkerKilled):
                requeue_stale_exports_task()
        export.refresh_from_db()
        assert export.state == ExportState.RUNNING
    assert export.attempts == 3

    _silent_for(export, settings.EXPORT_STALLED_AFTER_SECONDS + 60)
    assert requeue_stale_exports_task() == 0

    export.refresh_from_db()
    assert export.state == ExportState.FAILED and export.finished_at is not None
    assert "the worker running it stopped 3 times" in export.error
    assert export.error.endswith("ask for the export again.")
    assert AuditEvent.objects.filter(action="labels.export_requeued").count() == 2
    failed = AuditEvent.objects.get(action="labels.export_failed")
    assert failed.reason == export.error
    # A failed export stays failed: the sweep neither revives nor re-sends it.
    assert requeue_stale_exports_task() == 0


def test_a_slow_run_that_was_replaced_stops_at_its_next_chunk(
    labeled_job: Job, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    export = _asked_for(labeled_job, ago=timedelta(hours=2))
    calls = 0

    def slow_then_resumes(**kwargs: Any) -> ExportResult:
        nonlocal calls
        calls += 1
        if calls > 1:  # the newer run
            return export_labels(**kwargs)
        # The first run is stuck long enough to be presumed dead; the sweep runs the export again meanwhile.
        _silent_for(export, settings.EXPORT_STALLED_AFTER_SECONDS + 60)
        assert requeue_stale_exports_task() == 1
        return export_labels(**kwargs)  # then it wakes up and writes its first chunk

    monkeypatch.setattr(export_runs, "export_labels", slow_then_resumes)
    stale_run = run_label_export_task(export_id=export.pk)

    export.refresh_from_db()
    assert stale_run["state"] == ExportState.DONE  # it reports the export as the newer run left it
    assert (export.state, export.attempts, export.rows_done) == (ExportState.DONE, 2, 4)
    assert AuditEvent.objects.filter(action="labels.exported").count() == 1  # the slow run stopped before
    assert _files(tmp_path) == [f"export_{export.pk}.csv"]


def test_a_slow_run_that_was_replaced_cannot_overwrite_the_newer_result(
    labeled_job: Job, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    export = _asked_for(labeled_job, ago=timedelta(hours=2))
    calls = 0

    def slow_without_progress(*, out: IO[bytes], **kwargs: Any) -> ExportResult:
        nonlocal calls
        calls += 1
        if calls > 1:  # the newer run
            return export_labels(out=out, **kwargs)
        _silent_for(export, settings.EXPORT_STALLED_AFTER_SECONDS + 60)
        assert requeue_stale_exports_task() == 1
        out.write(b"stale,rows\n")  # the slow run finishes late, with what it had read long ago
        return ExportResult(job=labeled_job.pk, format="csv", rows=99, bytes=11, sha256="0" * 64, version=None)

    monkeypatch.setattr(export_runs, "export_labels", slow_without_progress)
    run_label_export_task(export_id=export.pk)

    export.refresh_from_db()
    assert (export.state, export.attempts, export.rows_done) == (ExportState.DONE, 2, 4)
    assert export.sha256 != "0" * 64
    with export.file.open("rb") as handle:
        assert b"stale" not in handle.read()
    assert _files(tmp_path) == [f"export_{export.pk}.csv"]  # the slow run's file was not left behind


def test_a_duplicate_message_after_the_worker_died_does_not_run_it_twice(
    labeled_job: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = _asked_for(labeled_job, ago=timedelta(hours=2))
    _die_while_running(export, monkeypatch)
    # The old message comes back (e.g. redelivered) while the row is still running: it does not take it.
    assert run_label_export_task(export_id=export.pk)["state"] == ExportState.RUNNING
    export.refresh_from_db()
    assert export.attempts == 1

    _silent_for(export, settings.EXPORT_STALLED_AFTER_SECONDS + 60)
    requeue_stale_exports_task()
    run_label_export_task(export_id=export.pk)  # a duplicate after the new run finished changes nothing
    export.refresh_from_db()
    assert (export.state, export.attempts) == (ExportState.DONE, 2)
    assert AuditEvent.objects.filter(action="labels.exported").count() == 1


def test_a_queued_export_is_sent_again_only_once_per_requeue_delay(
    labeled_job: Job, sent: list[dict[str, Any]]
) -> None:
    export = _asked_for(labeled_job, ago=timedelta(hours=1))  # e.g. waiting behind a long queue

    assert requeue_stale_exports_task() == 1
    assert sent == [{"export_id": export.pk}]
    export.refresh_from_db()
    assert export.queued_at is not None and export.state == ExportState.QUEUED

    for _ in range(3):  # the next beat ticks: it was sent a moment ago, no duplicate
        assert requeue_stale_exports_task() == 0
    assert len(sent) == 1

    delay = timedelta(seconds=settings.EXPORT_REQUEUE_AFTER_SECONDS)
    LabelExport.objects.filter(pk=export.pk).update(queued_at=timezone.now() - delay - timedelta(seconds=1))
    assert requeue_stale_exports_task() == 1  # that message is presumed lost: once more
    assert len(sent) == 2


def test_an_export_asked_for_a_while_ago_but_just_sent_is_not_sent_again(
    labeled_job: Job, sent: list[dict[str, Any]]
) -> None:
    export = request_label_export(job=labeled_job, fmt="csv", actor=SYSTEM)
    export.refresh_from_db()
    assert sent == [{"export_id": export.pk}] and export.queued_at is not None
    LabelExport.objects.filter(pk=export.pk).update(created_at=timezone.now() - timedelta(hours=1))

    assert requeue_stale_exports_task() == 0
    assert len(sent) == 1


def test_a_run_writes_its_heartbeat_as_it_claims_and_as_it_writes(labeled_job: Job) -> None:
    export = _asked_for(labeled_job, ago=timedelta(hours=1))
    before = timezone.now()
    export = run_label_export(export=export, actor=SYSTEM)
    assert export.state == ExportState.DONE and export.attempts == 1
    assert export.heartbeat_at is not None and export.heartbeat_at >= before


def test_a_stall_delay_too_short_to_be_safe_is_refused_at_startup() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "EXPORT_STALLED_AFTER_SECONDS": "5"}
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode != 0
    assert "EXPORT_STALLED_AFTER_SECONDS must be at least 60" in done.stderr


def test_an_export_that_fails_on_a_bug_is_failed_at_once_with_a_sentence_not_rerun(
    labeled_job: Job, sent: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    export = _asked_for(labeled_job, ago=timedelta(hours=2))

    def bug(**kwargs: Any) -> ExportResult:
        raise TypeError("unsupported operand type(s) for +: 'NoneType' and 'int'")

    monkeypatch.setattr(export_runs, "export_labels", bug)
    run_label_export(export=export, actor=SYSTEM)
    export.refresh_from_db()
    assert export.state == ExportState.FAILED and "failed unexpectedly (TypeError)" in export.error
    assert AuditEvent.objects.filter(action="labels.export_failed").count() == 1
    _silent_for(export, 3600)
    assert requeue_stale_exports_task() == 0 and sent == []  # failed, not a dead worker's export


def test_a_run_replaced_after_its_last_chunk_leaves_no_exported_event(
    labeled_job: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = _asked_for(labeled_job, ago=timedelta(0))

    def replaced_at_the_end(**kwargs: Any) -> ExportResult:
        result = export_labels(**kwargs)  # every chunk written
        LabelExport.objects.filter(pk=export.pk).update(state=ExportState.QUEUED, queued_at=None, rows_done=0)
        return result

    monkeypatch.setattr(export_runs, "export_labels", replaced_at_the_end)
    assert run_label_export(export=export, actor=SYSTEM).state == ExportState.QUEUED
    assert not AuditEvent.objects.filter(action="labels.exported").exists()
    monkeypatch.undo()
    done = run_label_export(export=LabelExport.objects.get(pk=export.pk), actor=SYSTEM)
    assert done.state == ExportState.DONE
    event = AuditEvent.objects.get(action="labels.exported")
    assert event.after["export"] == export.pk and event.after["sha256"] == done.sha256


def test_a_run_that_fails_after_storing_its_file_leaves_no_file_behind(
    labeled_job: Job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = _asked_for(labeled_job, ago=timedelta(0))

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("the audit table is unavailable")

    monkeypatch.setattr(export_runs, "record_export_event", broken)
    failed = run_label_export(export=export, actor=SYSTEM)
    assert failed.state == ExportState.FAILED and not failed.file.name
    assert _files(tmp_path) == []
