"""Running totals per job, kept by the database so a big job's page never sums its millions of rows.

``JobTally`` holds a job's progress (its non-gold, not cancelled Hits: how many, how many complete, answers
wanted, submitted and slots taken) and its item counts; ``JobCostTally`` holds its ledger totals by kind,
status and marketplace. Triggers on ``tasks_hit``, ``tasks_item`` and ``tasks_costentry`` (migration
``0014_job_tallies``) add each change to these rows in the same transaction as the change itself, whichever
code made it (services, raw SQL, bulk updates). A job's figures are the sum of its rows: on PostgreSQL each
database session adds to its own ``shard`` row, so concurrent transactions do not queue on one row lock.

Rows of the counted tables are never deleted while their job lives, so the triggers count inserts and
updates only. ``tasks.services.tallies.recount_tallies`` rebuilds a job's rows from the tables (after a
bulk load that bypassed triggers, or to check them).
"""

from __future__ import annotations

from django.db import models

from tasks.models.core import Job


class JobTally(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="+")
    shard = models.SmallIntegerField(default=0)
    hits = models.BigIntegerField(default=0, help_text="Non-gold Hits that are not cancelled.")
    hits_complete = models.BigIntegerField(default=0)
    answers_wanted = models.BigIntegerField(default=0)
    answers_submitted = models.BigIntegerField(default=0)
    slots_taken = models.BigIntegerField(default=0)
    items = models.BigIntegerField(default=0, help_text="Items that are not gold.")
    gold_items = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "shard"], name="jobtally_unique_shard")]

    def __str__(self) -> str:
        return f"tally of job {self.job_id} (shard {self.shard})"


class JobCostTally(models.Model):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="+")
    shard = models.SmallIntegerField(default=0)
    kind = models.CharField(max_length=24)
    status = models.CharField(max_length=16)
    marketplace = models.CharField(max_length=16)
    amount = models.DecimalField(max_digits=18, decimal_places=4, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["job", "shard", "kind", "status", "marketplace"], name="jobcosttally_unique_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.status} {self.marketplace} of job {self.job_id}: {self.amount}"
