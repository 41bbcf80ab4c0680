"""Exports run in the background (Celery): a ``LabelExport`` row records the request, progress and file."""

from __future__ import annotations

import logging
import tempfile
from datetime import datetime, timedelta
from typing import IO, Any

from django.core.files import File
from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from tasks.label_selectors import ExportOptions
from tasks.models import DatasetVersion, ExportState, Job, LabelExport
from tasks.services.errors import QueueUnavailable, ServiceError
from tasks.services.exports.registry import get_exporter
from tasks.services.exports.streaming import export_labels, open_stored_file, record_export_event
from workforce.audit import Actor, record_audit_event

logger = logging.getLogger(__name__)
REQUEUE_BATCH = 500
# Runs an export may have in all: after this many presumed-dead runs (see ``requeue_stale_exports``) it fails.
EXPORT_MAX_ATTEMPTS = 3
SWEEP = Actor.system("export sweep")


class _ClaimLost(Exception):
    """This run's claim on an export was taken over: the sweep presumed it dead and queued the export again."""


class ExportNotStarted(ServiceError):
    """The export was recorded but the broker could not be reached; it stays queued for the periodic sweep."""

    def __init__(self, export_id: int) -> None:
        self.export_id = export_id
        super().__init__(
            f"Export {export_id} is recorded, but the task queue (the Celery broker) cannot be reached right now, "
            "so it has not started. It stays queued and starts by itself within a few minutes of the queue "
            "coming back: there is no need to ask again."
        )


def _queue_export(export_id: int) -> None:
    from tasks.tasks import enqueue, run_label_export_task  # the task module imports this one

    try:
        enqueue(run_label_export_task, export_id=export_id)
    except QueueUnavailable as exc:
        raise ExportNotStarted(export_id) from exc
    _mark_sent(export_id)


def _mark_sent(export_id: int) -> None:
    """Note that a message for the export is on the queue (once it is claimed, there is nothing to note)."""
    LabelExport.objects.filter(pk=export_id, state=ExportState.QUEUED).update(queued_at=timezone.now())


def request_label_export(
    *,
    job: Job,
    fmt: str,
    actor: Actor,
    options: ExportOptions | None = None,
    version: DatasetVersion | None = None,
    created_by: Any = None,
) -> LabelExport:
    """Record an export request and queue it (Celery; inline without a broker).

    Raises ``ExportNotStarted`` after commit when the broker is unreachable: the row stays queued and
    ``requeue_stale_exports`` (Celery beat) queues it again once the broker answers.
    """
    options = options or ExportOptions()
    get_exporter(fmt).check(job, options)
    with transaction.atomic():
        export = LabelExport.objects.create(
            job=job,
            format=fmt,
            options=options.as_dict(),
            version=version,
            created_by=created_by,
            created_at=timezone.now(),
        )
        record_audit_event(
            actor=actor,
            action="labels.export_requested",
            object_type="job",
            object_id=job.pk,
            after={"export": export.pk, "format": fmt, "options": options.as_dict()},
        )
        export_id = export.pk
        transaction.on_commit(lambda: _queue_export(export_id))
    return export


def requeue_stale_exports(
    *, older_than: timedelta, stalled_after: timedelta | None = None, max_attempts: int = EXPORT_MAX_ATTEMPTS
) -> int:
    """Queue again the exports no live worker is on. Returns how many messages were sent.

    - Queued, and last sent to the queue (or, never sent, asked for) ``older_than`` ago: no worker claimed it
      (its message was lost, or the broker was down). One sent recently is left alone: it may only be waiting
      behind a long queue, and sending it again every beat tick would pile up duplicates.
    - Running, with no sign of life for ``stalled_after`` (its worker was killed, ran out of memory, or was
      redeployed): put back to queued and sent again, unless it has had ``max_attempts`` runs already, then
      failed with a sentence saying so. A run shows life by claiming the row and by every chunk it writes.

    A duplicate message is harmless: ``run_label_export`` claims the row QUEUED -> RUNNING with a conditional
    update, so only one run writes it, and a run presumed dead that was only slow cannot overwrite the newer
    run's result. A broker still down stops the sweep (the next beat tick tries again)."""
    from tasks.tasks import enqueue, run_label_export_task  # the task module imports this one

    now = timezone.now()
    revived = [] if stalled_after is None else _recover_stalled(cutoff=now - stalled_after, max_attempts=max_attempts)
    stale = list(
        LabelExport.objects.filter(state=ExportState.QUEUED)
        .annotate(last_sent=Coalesce("queued_at", "created_at"))
        .filter(last_sent__lt=now - older_than)
        .exclude(pk__in=revived)
        .order_by("pk")
        .values_list("pk", flat=True)[:REQUEUE_BATCH]
    )
    for export_id in [*revived, *stale]:
        enqueue(run_label_export_task, export_id=export_id)
        _mark_sent(export_id)
    if stale:
        logger.warning("queued %d export(s) again that no worker had picked up: %s", len(stale), stale)
    return len(revived) + len(stale)


def _stalled_error(export_id: int, runs: int) -> str:
    times = "once" if runs == 1 else "twice" if runs == 2 else f"{runs} times"
    return (
        f"Export {export_id} did not finish: the worker running it stopped {times} "
        "(killed, out of memory, or redeployed); ask for the export again."
    )


def _recover_stalled(*, cutoff: datetime, max_attempts: int) -> list[int]:
    """Running exports that showed no life since ``cutoff``: queued again (their ids returned), or failed once
    they have had ``max_attempts`` runs. Each is changed by a conditional update, so a run that shows life
    meanwhile (or finishes) keeps its export."""
    lifeless = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, created_at__lt=cutoff)
    stalled = list(
        LabelExport.objects.filter(lifeless, state=ExportState.RUNNING)
        .order_by("pk")
        .values_list("pk", "job_id", "attempts")[:REQUEUE_BATCH]
    )
    requeued: list[int] = []
    for export_id, job_id, attempts in stalled:
        rows = LabelExport.objects.filter(lifeless, pk=export_id, state=ExportState.RUNNING, attempts=attempts)
        give_up = attempts >= max_attempts
        with transaction.atomic():
            if give_up:
                error = _stalled_error(export_id, attempts)
                changed = rows.update(state=ExportState.FAILED, error=error, finished_at=timezone.now())
            else:
                error = f"its worker stopped (run {attempts} of at most {max_attempts}); queued again"
                changed = rows.update(state=ExportState.QUEUED, queued_at=None, rows_done=0)
            if not changed:
                continue
            record_audit_event(
                actor=SWEEP,
                action="labels.export_failed" if give_up else "labels.export_requeued",
                object_type="job",
                object_id=job_id,
                after={"export": export_id, "attempts": attempts},
                reason=error,
            )
        if give_up:
            logger.error("export %s failed: its worker stopped %d times", export_id, attempts)
        else:
            requeued.append(export_id)
    if requeued:
        logger.warning("queued %d export(s) again whose worker stopped: %s", len(requeued), requeued)
    return requeued


def open_export_file(export: LabelExport) -> IO[bytes]:
    """A finished export's file, opened for reading; ``StoredFileMissing`` when it is gone from storage."""
    return open_stored_file(
        export.file,
        f"The file of export {export.pk} (job {export.job_id}) is missing from storage (MEDIA_ROOT): "
        "ask for the export again.",
    )


def _claim(export: LabelExport) -> int | None:
    """Take the export QUEUED -> RUNNING for this run with a conditional update (one run wins): this run's
    attempt number, or None when another run has it or it is finished."""
    previous = LabelExport.objects.filter(pk=export.pk, state=ExportState.QUEUED).values_list("attempts", flat=True)
    attempts = previous.first()
    if attempts is None:
        return None
    claimed = LabelExport.objects.filter(pk=export.pk, state=ExportState.QUEUED, attempts=attempts).update(
        state=ExportState.RUNNING, attempts=attempts + 1, heartbeat_at=timezone.now()
    )
    return attempts + 1 if claimed else None


def run_label_export(*, export: LabelExport, actor: Actor) -> LabelExport:
    """Write the export's file, updating ``rows_done`` as chunks are written; a failure is recorded, not raised.

    Every write is conditional on this run's claim (state running, its attempt number): a run the sweep
    presumed dead and replaced stops at its next chunk, and never overwrites the newer run's result."""
    attempt = _claim(export)
    if attempt is None:
        export.refresh_from_db()
        return export
    mine = LabelExport.objects.filter(pk=export.pk, state=ExportState.RUNNING, attempts=attempt)

    def progress(done: int, total: int) -> None:
        if not mine.update(rows_done=done, rows_total=total, heartbeat_at=timezone.now()):
            raise _ClaimLost

    exporter = get_exporter(export.format)
    options = ExportOptions.from_dict(export.options)
    saved = ""  # the file this run wrote to storage, removed again unless the row keeps it
    try:
        with tempfile.TemporaryFile() as spool:
            result = export_labels(
                job=export.job,
                fmt=export.format,
                out=spool,
                actor=actor,
                options=options,
                version=export.version,
                progress=progress,
                audit=False,  # audited below, once this run's result is the one kept
            )
            spool.seek(0)
            # To storage first (a name already taken, e.g. by a newer run, gets another), then the row if still ours.
            export.file.save(f"export_{export.pk}.{exporter.extension}", File(spool), save=False)
            saved = export.file.name
            now = timezone.now()
            with transaction.atomic():
                finished = mine.update(
                    file=export.file.name,
                    sha256=result.sha256,
                    rows_done=result.rows,
                    rows_total=result.rows,
                    state=ExportState.DONE,
                    finished_at=now,
                    heartbeat_at=now,
                )
                if finished:
                    record_export_event(
                        actor=actor,
                        job=export.job,
                        fmt=export.format,
                        options=options,
                        version=export.version,
                        export=export.pk,
                        rows=result.rows,
                        bytes=result.bytes,
                        sha256=result.sha256,
                    )
            if not finished:
                raise _ClaimLost
            saved = ""  # kept: the row names it
    except _ClaimLost:
        logger.warning("export %s: run %d was presumed dead and replaced; its result is dropped", export.pk, attempt)
    except ServiceError as exc:
        _fail(mine, export, actor, str(exc))
    except Exception as exc:  # a bug or a storage error: recorded now, not re-run by the sweep as a dead worker
        logger.exception("export %s failed", export.pk)
        _fail(
            mine,
            export,
            actor,
            f"The export failed unexpectedly ({type(exc).__name__}); ask for it again, and tell an administrator "
            "if it fails again.",
        )
    finally:
        if saved:
            export.file.storage.delete(saved)
    export.refresh_from_db()
    return export


def _fail(mine: QuerySet[LabelExport], export: LabelExport, actor: Actor, error: str) -> None:
    """Record this run's failure (only while the export is still its own) and audit it."""
    with transaction.atomic():
        if mine.update(state=ExportState.FAILED, error=error, finished_at=timezone.now()):
            record_audit_event(
                actor=actor,
                action="labels.export_failed",
                object_type="job",
                object_id=export.job_id,
                after={"export": export.pk},
                reason=error,
            )
