"""Exports of a job's labels (CSV, JSON Lines, Ground Truth manifest, COCO, and formats other modules
register) and dataset versions. Import from here; the built-in formats register on import."""

from __future__ import annotations

from tasks.label_selectors import ExportOptions
from tasks.services.exports import formats as _formats  # noqa: F401  (registers the built-in formats)
from tasks.services.exports import mturk as _mturk  # noqa: F401  (registers the MTurk results CSV)
from tasks.services.exports.registry import (
    KNOWN_FORMATS,
    Exporter,
    UnknownFormat,
    get_exporter,
    register_exporter,
    registered_formats,
    unregister_exporter,
)
from tasks.services.exports.runs import (
    ExportNotStarted,
    open_export_file,
    request_label_export,
    requeue_stale_exports,
    run_label_export,
)
from tasks.services.exports.streaming import (
    ExportResult,
    StoredFileMissing,
    check_version_file,
    export_labels,
    iter_version_chunks,
    open_version_file,
    stream_labels,
)
from tasks.services.exports.versions import (
    VersionDiff,
    create_dataset_version,
    diff_dataset_versions,
    verify_dataset_version,
)

__all__ = [
    "KNOWN_FORMATS",
    "ExportNotStarted",
    "ExportOptions",
    "ExportResult",
    "Exporter",
    "StoredFileMissing",
    "UnknownFormat",
    "VersionDiff",
    "check_version_file",
    "create_dataset_version",
    "diff_dataset_versions",
    "export_labels",
    "get_exporter",
    "iter_version_chunks",
    "open_export_file",
    "open_version_file",
    "register_exporter",
    "registered_formats",
    "request_label_export",
    "requeue_stale_exports",
    "run_label_export",
    "stream_labels",
    "unregister_exporter",
    "verify_dataset_version",
]
