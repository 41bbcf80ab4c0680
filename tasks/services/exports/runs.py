"""Exports run in the background (Celery): a ``LabelExport`` row records the request, progress and file."""

from __future__ import annotations

import logging
import tempfile
from datetime import timedelta
from typing import IO, Any

from django.core.files import File
from django.db import transaction
from django.utils import timezone

from tasks.label_selectors import ExportOptions
from tasks.models import DatasetVersion, ExportState, Job, LabelExport
from tasks.services.errors import ServiceError
from tasks.services.exports.registry import get_exporter
from tasks.services.exports.streaming import StoredFileMissing, export_labels
from workforce.audit import Actor, record_audit_event

logger = logging.getLogger(__name__)
REQUEUE_BATCH = 500


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
    from tasks.tasks import QueueUnavailable, enqueue, run_label_export_task  # the task module imports this one

    try:
        enqueue(run_label_export_task, export_id=export_id)
    except QueueUnavailable as exc:
        raise ExportNotStarted(export_id) from exc


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


def requeue_stale_exports(*, older_than: timedelta) -> int:
    """Queue again every export still queued ``older_than`` after it was asked for: no worker claimed it (its
    message was lost, or the broker was down). A duplicate message is harmless: ``run_label_export`` claims
    the row QUEUED -> RUNNING with a conditional update, so only one run writes it. Returns how many were queued;
    a broker still down stops the sweep (the next beat tick tries again)."""
    from tasks.tasks import enqueue, run_label_export_task  # the task module imports this one

    cutoff = timezone.now() - older_than
    stale = list(
        LabelExport.objects.filter(state=ExportState.QUEUED, created_at__lt=cutoff)
        .order_by("pk")
        .values_list("pk", flat=True)[:REQUEUE_BATCH]
    )
    for export_id in stale:
        enqueue(run_label_export_task, export_id=export_id)
    if stale:
        logger.warning("queued %d export(s) again that no worker had picked up: %s", len(stale), stale)
    return len(stale)


def open_export_file(export: LabelExport) -> IO[bytes]:
    """A finished export's file, opened for reading; ``StoredFileMissing`` when it is gone from storage."""
    try:
        handle: IO[bytes] = export.file.open("rb")
    except (FileNotFoundError, ValueError) as exc:  # ValueError: no file name recorded at all
        raise StoredFileMissing(
            f"The file of export {export.pk} (job {export.job_id}) is missing from storage (MEDIA_ROOT): "
            "ask for the export again."
        ) from exc
    return handle


def run_label_export(*, export: LabelExport, actor: Actor) -> LabelExport:
    """Write the export's file, updating ``rows_done`` as chunks are written; a failure is recorded, not raised."""
    claimed = LabelExport.objects.filter(pk=export.pk, state=ExportState.QUEUED).update(state=ExportState.RUNNING)
    if not claimed:
        export.refresh_from_db()
        return export

    def progress(done: int, total: int) -> None:
        LabelExport.objects.filter(pk=export.pk).update(rows_done=done, rows_total=total)

    exporter = get_exporter(export.format)
    try:
        with tempfile.TemporaryFile() as spool:
            result = export_labels(
                job=export.job,
                fmt=export.format,
                out=spool,
                actor=actor,
                options=ExportOptions.from_dict(export.options),
                version=export.version,
                progress=progress,
            )
            spool.seek(0)
            name = f"export_{export.pk}.{exporter.extension}"
            with transaction.atomic():
                export.refresh_from_db()
                export.file.save(name, File(spool), save=False)
                export.sha256 = result.sha256
                export.rows_done = export.rows_total = result.rows
                export.state = ExportState.DONE
                export.finished_at = timezone.now()
                export.save(update_fields=["file", "sha256", "rows_done", "rows_total", "state", "finished_at"])
    except ServiceError as exc:
        with transaction.atomic():
            LabelExport.objects.filter(pk=export.pk).update(
                state=ExportState.FAILED, error=str(exc), finished_at=timezone.now()
            )
            record_audit_event(
                actor=actor,
                action="labels.export_failed",
                object_type="job",
                object_id=export.job_id,
                after={"export": export.pk},
                reason=str(exc),
            )
        export.refresh_from_db()
    return export
