"""Exports run in the background (Celery): a ``LabelExport`` row records the request, progress and file."""

from __future__ import annotations

import tempfile
from typing import Any

from django.core.files import File
from django.db import transaction
from django.utils import timezone

from tasks.label_selectors import ExportOptions
from tasks.models import DatasetVersion, ExportState, Job, LabelExport
from tasks.services.errors import ServiceError
from tasks.services.exports.registry import get_exporter
from tasks.services.exports.streaming import export_labels
from workforce.audit import Actor, record_audit_event


def request_label_export(
    *,
    job: Job,
    fmt: str,
    actor: Actor,
    options: ExportOptions | None = None,
    version: DatasetVersion | None = None,
    created_by: Any = None,
) -> LabelExport:
    """Record an export request and queue it (Celery; inline without a broker)."""
    from tasks.tasks import run_label_export_task  # the task module imports this one

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
        transaction.on_commit(lambda: run_label_export_task.delay(export_id=export.pk))
    return export


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
