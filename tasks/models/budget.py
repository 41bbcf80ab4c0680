"""Budgets: a job's cap (on ``Job``), reservations against it, an optional monthly cap across jobs,
and the 50/80/100% alerts already raised.

``Job.budget_reserved`` and ``MonthlyBudget.reserved`` are running sums of the reservation rows, changed
only by conditional updates in ``tasks.services.budget`` in the same transaction as the row, so a cap
holds under any concurrency.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q

from tasks.models.core import Job, currency_code


class BudgetReservation(models.Model):
    """One reservation (positive) or release (negative) of a job's worst-case cost; append-only."""

    job = models.ForeignKey(Job, on_delete=models.PROTECT, related_name="budget_reservations")
    amount = models.DecimalField(max_digits=14, decimal_places=4)
    key = models.CharField(max_length=200, unique=True, help_text="Idempotency key: one row per event.")
    reason = models.CharField(max_length=255, blank=True)
    month = models.DateField(help_text="First day of the month whose cap the amount counts against.")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["job", "created_at"], name="budgetres_job_time_idx")]

    def __str__(self) -> str:
        return f"{self.amount} for job {self.job_id} ({self.key})"


class MonthlyBudget(models.Model):
    """A cap on what all jobs in one currency together may reserve in one calendar month (UTC): one row per
    month and currency, so a euro job is held by the month's euro cap and never by its dollar cap."""

    month = models.DateField(help_text="First day of the month.")
    cap = models.DecimalField(max_digits=14, decimal_places=4, help_text="Most all jobs may reserve this month.")
    reserved = models.DecimalField(max_digits=14, decimal_places=4, default=Decimal("0"), editable=False)
    currency = models.CharField(max_length=3, default="USD", validators=[currency_code])

    class Meta:
        ordering = ["-month"]
        constraints = [
            models.CheckConstraint(condition=Q(reserved__lte=models.F("cap")), name="monthlybudget_within_cap"),
            models.CheckConstraint(condition=Q(month__day=1), name="monthlybudget_first_of_month"),
            models.UniqueConstraint(fields=["month", "currency"], name="monthlybudget_one_per_currency"),
        ]

    def __str__(self) -> str:
        return f"Budget {self.month:%Y-%m}: {self.cap} {self.currency}"


class BudgetAlert(models.Model):
    """A threshold (50, 80 or 100% of the cap) a job's spend has crossed; raised once per job."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="budget_alerts")
    threshold = models.PositiveSmallIntegerField()
    spent = models.DecimalField(max_digits=14, decimal_places=4)
    cap = models.DecimalField(max_digits=14, decimal_places=4)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["job", "threshold"], name="budgetalert_once_per_threshold")]

    def __str__(self) -> str:
        return f"Job {self.job_id} reached {self.threshold}% of its budget"
