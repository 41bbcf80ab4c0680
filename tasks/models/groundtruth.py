"""SageMaker Ground Truth: the labeling job a Job runs as, and Ground Truth's own consolidated labels.

``LabelingJob`` holds what a publish needs (workteam, task type, Lambdas, price) and what ``describe``
last said (status, counters, failure reason). ``GroundTruthLabel`` keeps the label Ground Truth itself
consolidated for an item, apart from our ``ConsensusLabel``, so the two can be compared.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from tasks.models.core import Item, Job


class WorkforceKind(models.TextChoices):
    PRIVATE = "private", "Private workteam"
    VENDOR = "vendor", "Vendor workteam"
    PUBLIC = "public", "Public workforce (Mechanical Turk)"


class LabelingJob(models.Model):
    """One Job run as one Ground Truth labeling job (its name is fixed at creation, so a retried
    publish finds the same remote job)."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="labeling_job")
    name = models.CharField(max_length=63, unique=True, help_text="The labeling job's name on AWS.")
    arn = models.CharField(max_length=256, blank=True)
    task_type = models.CharField(
        max_length=48,
        default="ImageMultiClass",
        help_text="Built-in task type (e.g. ImageMultiClass, TextMultiClass, BoundingBox) or 'custom'.",
    )
    workforce = models.CharField(max_length=8, choices=WorkforceKind.choices, default=WorkforceKind.PRIVATE)
    workteam_arn = models.CharField(max_length=256, blank=True)
    task_price = models.DecimalField(
        max_digits=10,
        decimal_places=5,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Public workforce price per task (USD); 0 for private and vendor workteams.",
    )
    workers_per_object = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(9)]
    )
    task_time_limit_seconds = models.PositiveIntegerField(default=300)
    task_availability_seconds = models.PositiveIntegerField(default=864000)
    max_concurrent_tasks = models.PositiveIntegerField(default=1000)
    ui_template = models.TextField(blank=True, help_text="Liquid HTML template of a custom task.")
    pre_annotation_lambda_arn = models.CharField(max_length=256, blank=True, help_text="Custom tasks only.")
    consolidation_lambda_arn = models.CharField(max_length=256, blank=True, help_text="Empty: AWS's built-in one.")
    status = models.CharField(max_length=16, blank=True, help_text="LabelingJobStatus from the last describe.")
    counters = models.JSONField(default=dict, blank=True)
    failure_reason = models.TextField(blank=True)
    output_manifest_uri = models.CharField(max_length=1024, blank=True)
    input_manifest_uri = models.CharField(max_length=1024, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    described_at = models.DateTimeField(null=True, blank=True)
    collected_at = models.DateTimeField(
        null=True, blank=True, help_text="When the finished job's results were collected for the last time."
    )

    class Meta:
        verbose_name = "Ground Truth labeling job"
        indexes = [models.Index(fields=["status"], name="labelingjob_status_idx")]

    def __str__(self) -> str:
        return self.name


class GroundTruthLabel(models.Model):
    """The label Ground Truth consolidated for an item, as its output manifest gives it.

    ``value`` is a label of the job (or a list of them) for classification types, ``{"shapes": [...]}``
    (with a ``confidence`` per box) for bounding boxes; for task types our kinds cannot express (masks,
    custom) it is the attribute's raw JSON. ``raw`` is always that
    raw JSON and ``metadata`` the ``<attribute>-metadata`` object."""

    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="groundtruth_label")
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="groundtruth_labels")
    labeling_job_name = models.CharField(max_length=128)
    label_attribute = models.CharField(max_length=128)
    task_type = models.CharField(max_length=64, help_text="The metadata's 'type', e.g. groundtruth/custom.")
    value = models.JSONField(null=True)
    raw = models.JSONField(null=True)
    metadata = models.JSONField(default=dict)
    confidence = models.FloatField(null=True, blank=True)
    human_annotated = models.BooleanField(null=True)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["job", "confidence"], name="gtlabel_job_confidence_idx")]

    def __str__(self) -> str:
        return f"Ground Truth label of item {self.item_id}: {self.value}"
