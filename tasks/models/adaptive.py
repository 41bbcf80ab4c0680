"""Adaptive redundancy: the cached worker skills of a job, refitted as its answers grow."""

from __future__ import annotations

from django.db import models

from tasks.models.core import Job


class AdaptiveSkills(models.Model):
    """A snapshot of ``tasks.aggregation.adaptive.WorkerSkills`` for one job.

    ``workers`` lists the worker ids in row order of ``log_conf`` (``[worker][answered][true]``, one more
    row at the end for the population); ``labels`` is the label order of the matrices. Written only by
    ``tasks.services.adaptive``.
    """

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="adaptive_skills")
    labels = models.JSONField(default=list)
    workers = models.JSONField(default=list)
    log_conf = models.JSONField(default=list)
    log_prior = models.JSONField(default=list)
    final_model = models.JSONField(
        default=dict,
        blank=True,
        help_text="How the final Dawid-Skene aggregation read the answers at the last re-fit (its matrices and "
        "prior, and the moments of an answer to come): a short budget counts an item settled only when this "
        "model, too, expects its label not to change.",
    )
    answers_at_fit = models.PositiveIntegerField(default=0, help_text="Answers the last re-fit saw.")
    submitted_at_fit = models.BigIntegerField(
        default=0,
        help_text="The job's submitted assignments (its tallies) when the last re-fit started: the hot path "
        "compares the tallies with this, so it never counts the job's answers.",
    )
    fitted_at = models.DateTimeField(null=True, blank=True)
    budget_exhausted_at = models.DateTimeField(
        null=True, blank=True, help_text="When an extra answer was first refused for lack of budget (audited once)."
    )
    budget_step = models.FloatField(
        null=True,
        blank=True,
        help_text="While the budget cannot pay every extra answer: the confidence step the last allocation pass "
        "served (only items less settled than this got answers); empty when the budget pays them all.",
    )

    def __str__(self) -> str:
        return f"Adaptive skills of job {self.job_id} ({self.answers_at_fit} answers)"
