"""Quality review flags: assignments a policy set aside for a person to look at."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from tasks.models.core import Assignment, Job
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
