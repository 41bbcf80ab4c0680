"""Quality: review flags set by policies, and hidden gold placed on workers' pages."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from tasks.models.core import Assignment, Item, Job
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
