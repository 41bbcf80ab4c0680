"""The cost ledger: one append-only row per amount of money committed or charged.

Rows are written only by ``tasks.services.ledger``, in the same transaction as the event that causes
them, and never changed: a correction is a new ``reversal`` row pointing at the row it cancels.
``idempotency_key`` is unique, so a retried event can never book the same money twice.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import TruncDay

from tasks.models.core import Job
from tasks.models.work import Assignment, Hit
from workforce.models import Marketplace, Worker


class CostKind(models.TextChoices):
    REWARD = "reward", "Reward"
    MARKETPLACE_FEE = "marketplace_fee", "Marketplace fee"
    BONUS = "bonus", "Bonus"
    GT_OBJECT_CHARGE = "gt_object_charge", "Ground Truth object charge"
    WORKFORCE_PRICE = "workforce_price", "Workforce price"
    INTERNAL_PAY = "internal_pay", "Internal pay"
    REVERSAL = "reversal", "Reversal"


class CostStatus(models.TextChoices):
    COMMITTED = "committed", "Committed (owed, not yet paid)"
    CHARGED = "charged", "Charged (paid or billed)"


class CostEntry(models.Model):
    job = models.ForeignKey(Job, on_delete=models.PROTECT, related_name="cost_entries")
    hit = models.ForeignKey(Hit, null=True, blank=True, on_delete=models.PROTECT, related_name="cost_entries")
    assignment = models.ForeignKey(
        Assignment, null=True, blank=True, on_delete=models.PROTECT, related_name="cost_entries"
    )
    worker = models.ForeignKey(Worker, null=True, blank=True, on_delete=models.PROTECT, related_name="cost_entries")
    marketplace = models.CharField(max_length=16, choices=Marketplace.choices)
    kind = models.CharField(max_length=24, choices=CostKind.choices)
    status = models.CharField(max_length=16, choices=CostStatus.choices)
    amount = models.DecimalField(max_digits=14, decimal_places=4, help_text="Negative only for reversals.")
    currency = models.CharField(max_length=3, default="USD")
    idempotency_key = models.CharField(max_length=200, unique=True)
    reference = models.CharField(max_length=200, blank=True, help_text="The marketplace's id for this charge.")
    reverses = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by")
    memo = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name_plural = "cost entries"
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="reversal", reverses__isnull=False) | (~Q(kind="reversal") & Q(reverses__isnull=True)),
                name="costentry_reversal_points_back",
            ),
        ]
        indexes = [
            models.Index(fields=["job", "kind"], name="costentry_job_kind_idx"),
            models.Index(fields=["worker", "job"], name="costentry_worker_job_idx"),
            models.Index(fields=["marketplace", "created_at"], name="costentry_market_time_idx"),
            # Spend per day (the finance dashboard's chart, ``tasks.reports.selectors.list_spend_over_time``): its
            # rows read from this index alone and grouped in its (day, currency) order, no sort, no table read.
            # The day is truncated in the time zone current when the index is built (``TIME_ZONE``); a query
            # matches the index only when it truncates in the same zone.
            models.Index(
                TruncDay("created_at"), F("currency"), F("created_at"), F("amount"), name="costentry_day_spend_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency} for job {self.job_id}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise RuntimeError("Cost entries are append-only; book a reversal instead of changing one.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise RuntimeError("Cost entries are append-only; book a reversal instead of deleting one.")
