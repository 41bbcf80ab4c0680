"""The ops manager's console: dataset versions, label exports, instruction versions, idempotent API writes.

``DatasetVersion`` rows and their stored files are immutable once written: a new snapshot is a new number.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from tasks.models.core import Job


def _version_path(instance: DatasetVersion, filename: str) -> str:
    return f"dataset_versions/job_{instance.job_id}/v{instance.number}.jsonl"


def _export_path(instance: LabelExport, filename: str) -> str:
    return f"exports/job_{instance.job_id}/{filename}"


class DatasetVersion(models.Model):
    """An immutable, numbered snapshot of a job's consensus labels (canonical JSON Lines, one item a line)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="dataset_versions")
    number = models.PositiveIntegerField()
    method = models.CharField(max_length=16)
    parameters = models.JSONField(default=dict, blank=True)
    consensus_version = models.PositiveIntegerField(help_text="The consensus run the labels came from.")
    row_count = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    content = models.FileField(upload_to=_version_path, max_length=255)
    note = models.CharField(max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["job_id", "-number"]
        constraints = [models.UniqueConstraint(fields=["job", "number"], name="datasetversion_unique_number")]

    def __str__(self) -> str:
        return f"{self.job_id} v{self.number}"


class ExportState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class LabelExport(models.Model):
    """One export of a job's labels to a file, run in Celery; ``rows_done`` / ``rows_total`` is its progress."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="label_exports")
    format = models.CharField(max_length=16)
    options = models.JSONField(default=dict, blank=True)
    version = models.ForeignKey(DatasetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=16, choices=ExportState.choices, default=ExportState.QUEUED)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    file = models.FileField(upload_to=_export_path, max_length=255, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was last sent to the task queue (empty: never sent yet)."
    )
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="How many runs have claimed it; only the latest run may write the result."
    )
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="When its run last showed life (claimed the row or wrote rows)."
    )

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.format} export of job {self.job_id}"

    @property
    def percent(self) -> int:
        return int(100 * self.rows_done / self.rows_total) if self.rows_total else (100 if self.state == "done" else 0)


class JobInstructions(models.Model):
    """One version of a job's instructions (Markdown). The job's ``instructions`` field mirrors the latest."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="instruction_versions")
    version = models.PositiveIntegerField()
    text = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["job_id", "-version"]
        constraints = [models.UniqueConstraint(fields=["job", "version"], name="jobinstructions_unique_version")]

    def __str__(self) -> str:
        return f"Instructions v{self.version} of job {self.job_id}"


class IdempotencyRecord(models.Model):
    """An API write done once under a client's ``Idempotency-Key``: a retry gets the stored response."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    scope = models.CharField(max_length=100, help_text="The endpoint and object, e.g. 'publish:job:3'.")
    key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "scope", "key"], name="idempotencyrecord_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"
