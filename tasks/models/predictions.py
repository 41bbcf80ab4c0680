"""Model predictions for a job's items: pre-labels for workers, one more annotator for consensus, and
the material of active learning (where the model is unsure or disagrees with the crowd)."""

from __future__ import annotations

from django.db import models

from tasks.models.core import Item, Job


class Prediction(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="predictions")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="predictions")
    model_name = models.CharField(max_length=100, help_text="Which model (and version) predicted this.")
    value = models.JSONField(help_text="A label, a list of labels, or a drawing, as a worker would answer.")
    score = models.FloatField(help_text="The model's confidence in its prediction (0-1).")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "model_name"], name="prediction_unique_per_model"),
            models.CheckConstraint(condition=models.Q(score__gte=0, score__lte=1), name="prediction_score_0_1"),
        ]
        indexes = [models.Index(fields=["job", "model_name", "score"], name="prediction_job_model_score_idx")]

    def __str__(self) -> str:
        return f"{self.model_name}: {self.value} ({self.score:.2f}) for item {self.item_id}"
