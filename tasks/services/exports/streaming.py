"""Exports as byte streams: a job's live labels or a stored dataset version, in any registered format."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from django.db import transaction
from django.db.models.fields.files import FieldFile

from tasks.label_selectors import ExportOptions, LabelRow, count_labels, iter_label_chunks
from tasks.models import DatasetVersion, Job
from tasks.services.errors import ServiceError
from tasks.services.exports.registry import Exporter, get_exporter
from workforce.audit import Actor, record_audit_event

Progress = Callable[[int, int], None]
VERSION_CHUNK = 2000


class StoredFileMissing(ServiceError):
    """A dataset version's or an export's file is gone from storage (MEDIA_ROOT not shared, lost or not restored)."""


def _version_file_missing(version: DatasetVersion) -> str:
    return (
        f"The file of dataset version {version.number} of job {version.job_id} is missing from storage "
        "(MEDIA_ROOT), so it cannot be read: restore it from a backup, or take a new snapshot."
    )


def check_version_file(version: DatasetVersion) -> None:
    """Raise ``StoredFileMissing`` unless the version's file is in storage."""
    if not version.content or not version.content.storage.exists(version.content.name):
        raise StoredFileMissing(_version_file_missing(version))


def open_stored_file(field: FieldFile, missing: str) -> IO[bytes]:
    """A stored file, opened for reading; ``StoredFileMissing(missing)`` when it is gone from storage."""
    try:
        handle: IO[bytes] = field.open("rb")
    except (FileNotFoundError, ValueError) as exc:  # ValueError: no file name recorded at all
        raise StoredFileMissing(missing) from exc
    return handle


def open_version_file(version: DatasetVersion) -> IO[bytes]:
    """The version's stored file, opened for reading; ``StoredFileMissing`` when it is gone."""
    return open_stored_file(version.content, _version_file_missing(version))


@dataclass(frozen=True)
class ExportResult:
    job: int
    format: str
    rows: int
    bytes: int
    sha256: str
    version: int | None


def _counted(chunks: Iterator[list[LabelRow]], total: int, progress: Progress | None) -> Iterator[list[LabelRow]]:
    done = 0
    for chunk in chunks:
        yield chunk
        done += len(chunk)
        if progress:
            progress(done, total)


def iter_version_chunks(version: DatasetVersion, *, chunk_size: int = VERSION_CHUNK) -> Iterator[list[LabelRow]]:
    """The label rows stored in a dataset version's file, ``chunk_size`` at a time."""
    chunk: list[LabelRow] = []
    with open_version_file(version) as handle:
        for line in handle:
            data = json.loads(line)
            chunk.append(
                LabelRow(
                    item_id=data["item_id"],
                    external_id=data["external_id"],
                    payload=data["payload"],
                    value=data["value"],
                    confidence=data["confidence"],
                    probabilities=data["probabilities"],
                    answers_count=data["answers_count"],
                    method=data["method"],
                    created_at=datetime.fromisoformat(data["created_at"]),
                )
            )
            if len(chunk) >= chunk_size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _prepare(
    job: Job, fmt: str, options: ExportOptions, version: DatasetVersion | None
) -> tuple[Exporter, Iterator[list[LabelRow]], int]:
    exporter = get_exporter(fmt)
    exporter.check(job, options)
    if version is not None:
        if version.job_id != job.pk:
            raise ServiceError(f"Dataset version {version.number} belongs to another job.")
        if options.answers or options.scores or options.cost or options.min_confidence is not None:
            raise ServiceError("A dataset version holds labels only; export it without answers, scores or cost.")
        check_version_file(version)
        return exporter, iter_version_chunks(version), version.row_count
    total = count_labels(job, min_confidence=options.min_confidence)
    if not total and options.min_confidence is None and not job.consensus_labels.exists():
        raise ServiceError(f"Job {job.pk} has no consensus labels yet; compute consensus first.")
    return exporter, iter_label_chunks(job, options), total


def record_export_event(
    *, actor: Actor, job: Job, fmt: str, options: ExportOptions, version: DatasetVersion | None, **after: object
) -> None:
    """The ``labels.exported`` audit event of a finished export (``after``: its rows, bytes, sha256, ...)."""
    with transaction.atomic():
        record_audit_event(
            actor=actor,
            action="labels.exported",
            object_type="job",
            object_id=job.pk,
            after={
                "format": fmt,
                "options": options.as_dict(),
                "version": version.number if version else None,
                **after,
            },
        )


def stream_labels(
    *,
    job: Job,
    fmt: str,
    actor: Actor,
    options: ExportOptions | None = None,
    version: DatasetVersion | None = None,
    progress: Progress | None = None,
) -> Iterator[bytes]:
    """Check the request, audit it, and return the export's bytes as a lazy stream (for HTTP responses).

    Raises ``ServiceError`` up front for a bad request; the stream itself reads one chunk at a time.
    """
    options = options or ExportOptions()
    exporter, chunks, total = _prepare(job, fmt, options, version)
    record_export_event(actor=actor, job=job, fmt=fmt, options=options, version=version, rows=total, streamed=True)
    return exporter.render(job, _counted(chunks, total, progress), options)


def export_labels(
    *,
    job: Job,
    fmt: str,
    out: IO[bytes],
    actor: Actor,
    options: ExportOptions | None = None,
    version: DatasetVersion | None = None,
    progress: Progress | None = None,
    audit: bool = True,
) -> ExportResult:
    """Write ``job``'s labels (or a stored version's) in format ``fmt`` to ``out``; audit the finished export
    (``audit=False``: the caller does, once it has kept the result, with ``record_export_event``)."""
    options = options or ExportOptions()
    exporter, chunks, total = _prepare(job, fmt, options, version)
    digest = hashlib.sha256()
    size = 0
    rows = 0

    def counting(chunks: Iterator[list[LabelRow]]) -> Iterator[list[LabelRow]]:
        nonlocal rows
        for chunk in chunks:
            rows += len(chunk)
            yield chunk

    for part in exporter.render(job, _counted(counting(chunks), total, progress), options):
        out.write(part)
        digest.update(part)
        size += len(part)
    result = ExportResult(
        job=job.pk,
        format=fmt,
        rows=rows,
        bytes=size,
        sha256=digest.hexdigest(),
        version=version.number if version else None,
    )
    if audit:
        record_export_event(
            actor=actor, job=job, fmt=fmt, options=options, version=version, rows=rows, bytes=size, sha256=result.sha256
        )
    return result
