"""Quality: gold grades, per-job worker scores and blocks, review flags set by policies, and hidden gold
placed on workers' pages."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from tasks.models.core import Item, Job
from tasks.models.work import Answer, Assignment
from workforce.models import Worker


class AssignmentFlag(models.Model):
    """An assignment a quality policy flagged for review (e.g. every gold answer in it was wrong)."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="flags")
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="assignment_flags")
    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="assignment_flags")
    reason = models.CharField(max_length=64)
    evidence = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["assignment", "reason"], name="assignmentflag_one_per_reason"),
        ]
        indexes = [
            models.Index(fields=["job", "created_at"], condition=Q(resolved_at__isnull=True), name="flag_open_idx"),
        ]

    def __str__(self) -> str:
        return f"Assignment {self.assignment_id} flagged: {self.reason}"


class AssignmentGoldItem(models.Model):
    """A hidden gold item placed on one worker's page of a multi-item Hit when the Hit was handed out.

    The page shows it at ``position`` among the Hit's own items, like any other item. ``worker`` is the
    assignment's, copied so that a gold item reaches each worker at most once (a unique constraint).
    """

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="gold_items")
    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="gold_placements")
    position = models.PositiveSmallIntegerField(help_text="Its place on the worker's page (0 is first).")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["worker", "item"], name="assignmentgolditem_once_per_worker"),
            models.UniqueConstraint(fields=["assignment", "position"], name="assignmentgolditem_one_per_place"),
        ]

    def __str__(self) -> str:
        return f"Gold item {self.item_id} at {self.position} in assignment {self.assignment_id}"


class GoldGrade(models.Model):
    """How one answer to a gold item scored against the item's known answer."""

    answer = models.OneToOneField(Answer, on_delete=models.CASCADE, related_name="gold_grade")
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="gold_grades")
    worker = models.ForeignKey(Worker, on_delete=models.PROTECT, related_name="gold_grades")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="gold_grades")
    score = models.FloatField(help_text="1 for right, 0 for wrong, in between for partly right (multi-label).")
    created_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["job", "worker"], name="goldgrade_job_worker_idx")]

    def __str__(self) -> str:
        return f"Gold grade {self.score:.2f} for worker {self.worker_id} on item {self.item_id}"


class WorkerJobScore(models.Model):
    """A worker's quality on one job, recomputed from gold grades and consensus."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="worker_scores")
    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="job_scores")
    gold_answers = models.PositiveIntegerField(default=0)
    gold_score = models.FloatField(default=0.0, help_text="Sum of gold grades.")
    accuracy = models.FloatField(null=True, blank=True, help_text="Posterior mean gold accuracy (Beta prior).")
    accuracy_low = models.FloatField(null=True, blank=True)
    accuracy_high = models.FloatField(null=True, blank=True)
    agreement = models.FloatField(null=True, blank=True, help_text="Share of answers equal to the consensus.")
    answers = models.PositiveIntegerField(default=0)
    median_seconds = models.FloatField(null=True, blank=True, help_text="Median seconds per item.")
    fast_share = models.FloatField(
        null=True, blank=True, help_text="Share of the worker's tasks done faster than a person can read them."
    )
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "worker"], name="workerjobscore_unique")]

    def __str__(self) -> str:
        return f"Score of worker {self.worker_id} on job {self.job_id}"


class JobBlock(models.Model):
    """A worker barred from one job (by a policy or a person), with the evidence."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="blocks")
    worker = models.ForeignKey(Worker, on_delete=models.CASCADE, related_name="job_blocks")
    reason = models.CharField(max_length=255)
    evidence = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    lifted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["job", "worker"], condition=Q(lifted_at__isnull=True), name="jobblock_one_active"
            )
        ]

    def __str__(self) -> str:
        return f"Worker {self.worker_id} blocked from job {self.job_id}"
