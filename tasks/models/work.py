"""The work on a job's items: Hit -> Assignment -> Answer, and ConsensusLabel.

State lives in ``TextChoices`` fields; transitions happen only in ``tasks.services`` through
conditional ``update()`` calls, never in ``save()``.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from tasks.models.core import Item, Job
from workforce.models import Marketplace, Worker


class HitState(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHING = "publishing", "Publishing: sent to a marketplace, answer not yet recorded"
    OPEN = "open", "Open: slots free"
    FULL = "full", "Full: every slot leased or done"
    COMPLETE = "complete", "Complete"
    CANCELLED = "cancelled", "Cancelled"


class Hit(models.Model):
    """One unit of work shown to a worker: one or more items, wanted ``assignments_wanted`` times.

    ``slots_taken`` counts live assignments (accepted, submitted, approved, rejected);
    ``assignments_submitted`` counts submitted ones. Both change only by conditional updates in
    ``tasks.services.work``, which is what keeps them exact under concurrency.
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="hits")
    state = models.CharField(max_length=16, choices=HitState.choices, default=HitState.DRAFT)
    assignments_wanted = models.PositiveSmallIntegerField()
    assignments_published = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Assignments the Hit was published wanting; adaptive redundancy's extra ones are counted above "
        "it (empty for Hits from before it was kept).",
    )
    slots_taken = models.PositiveSmallIntegerField(default=0)
    assignments_submitted = models.PositiveSmallIntegerField(default=0)
    is_gold = models.BooleanField(
        default=False,
        help_text="A gold Hit, offered to every worker once, never completes: one gold item (one item per Hit) "
        "or a page whose every place gets gold at hand-out (several items per Hit).",
    )
    gold_slots = models.PositiveSmallIntegerField(
        default=0,
        help_text="Places for hidden gold items on each page of this Hit, filled per worker at hand-out "
        "(internal multi-item jobs).",
    )
    priority = models.SmallIntegerField(
        default=0, help_text="Open Hits are handed out by priority (lower first), then in creation order."
    )
    marketplace = models.CharField(max_length=16, choices=Marketplace.choices, default=Marketplace.INTERNAL)
    external_id = models.CharField(max_length=128, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    items: models.ManyToManyField[Item, HitItem] = models.ManyToManyField(Item, through="HitItem", related_name="hits")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["marketplace", "external_id"],
                condition=Q(external_id__isnull=False),
                name="hit_unique_external_id",
            ),
            models.CheckConstraint(
                condition=Q(assignments_submitted__lte=models.F("assignments_wanted")),
                name="hit_submitted_within_wanted",
            ),
            models.CheckConstraint(
                condition=Q(slots_taken__lte=models.F("assignments_wanted")), name="hit_slots_within_wanted"
            ),
        ]
        indexes = [
            # Handing out work reads a job's open Hits in (priority, id) order from this index alone.
            models.Index(
                fields=["job", "priority", "id"], condition=Q(state="open", is_gold=False), name="hit_open_idx"
            ),
            models.Index(fields=["job", "id"], condition=Q(state="open", is_gold=True), name="hit_open_gold_idx"),
            models.Index(fields=["job", "state"], name="hit_job_state_idx"),
        ]

    def __str__(self) -> str:
        return f"Hit {self.pk} of job {self.job_id}"


class HitItem(models.Model):
    hit = models.ForeignKey(Hit, on_delete=models.CASCADE, related_name="hit_items")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="hit_items")
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["hit_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["hit", "item"], name="hititem_unique"),
            models.UniqueConstraint(fields=["hit", "position"], name="hititem_unique_position"),
        ]

    def __str__(self) -> str:
        return f"Item {self.item_id} at {self.position} in Hit {self.hit_id}"


class AssignmentState(models.TextChoices):
    ACCEPTED = "accepted", "Accepted (leased)"
    SUBMITTED = "submitted", "Submitted"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    RETURNED = "returned", "Returned"
    EXPIRED = "expired", "Expired"


# States that hold one of a Hit's slots.
LIVE_ASSIGNMENT_STATES = (
    AssignmentState.ACCEPTED,
    AssignmentState.SUBMITTED,
    AssignmentState.APPROVED,
    AssignmentState.REJECTED,
)
DONE_ASSIGNMENT_STATES = (AssignmentState.SUBMITTED, AssignmentState.APPROVED, AssignmentState.REJECTED)


class Assignment(models.Model):
    """One worker's take on a Hit: a lease while accepted, then answers once submitted."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    hit = models.ForeignKey(Hit, on_delete=models.CASCADE, related_name="assignments")
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="assignments")
    worker = models.ForeignKey(Worker, on_delete=models.PROTECT, related_name="assignments")
    state = models.CharField(max_length=16, choices=AssignmentState.choices, default=AssignmentState.ACCEPTED)
    marketplace = models.CharField(max_length=16, choices=Marketplace.choices, default=Marketplace.INTERNAL)
    external_id = models.CharField(max_length=128, null=True, blank=True)
    accepted_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reward = models.DecimalField(max_digits=10, decimal_places=4)
    instructions_version = models.PositiveIntegerField(
        null=True, blank=True, help_text="The version of the job's instructions the worker was shown."
    )

    class Meta:
        constraints = [
            # A worker never works the same Hit twice (items belong to one Hit, so never the same item).
            # Worker first: the hand-out probes (worker, hit) for every candidate Hit.
            models.UniqueConstraint(fields=["worker", "hit"], name="assignment_unique_worker_per_hit"),
            models.UniqueConstraint(
                fields=["marketplace", "external_id"],
                condition=Q(external_id__isnull=False),
                name="assignment_unique_external_id",
            ),
        ]
        indexes = [
            models.Index(fields=["worker", "state"], name="assignment_worker_state_idx"),
            models.Index(fields=["job", "state"], name="assignment_job_state_idx"),
            models.Index(fields=["job", "id"], name="assignment_job_id_idx"),  # a job's assignment list
            models.Index(fields=["job", "submitted_at"], name="assignment_job_submitted_idx"),  # throughput
            models.Index(fields=["lease_expires_at"], condition=Q(state="accepted"), name="assignment_lease_idx"),
            # A worker's current lease in a job (checked on every hand-out): only live leases are indexed.
            models.Index(fields=["worker", "job"], condition=Q(state="accepted"), name="assignment_live_lease_idx"),
        ]

    def __str__(self) -> str:
        return f"Assignment {self.uuid}"


class Answer(models.Model):
    """One worker's value for one item within one assignment. ``job`` and ``worker`` are copied from
    the assignment so aggregation reads a job's answers from this table alone."""

    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="answers")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="answers")
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="answers")
    worker = models.ForeignKey(Worker, on_delete=models.PROTECT, related_name="answers")
    value = models.JSONField(help_text="A label, or a list of labels for multi-label kinds.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["assignment", "item"], name="answer_unique_per_item")]
        indexes = [
            models.Index(fields=["job", "item"], name="answer_job_item_idx"),
            models.Index(fields=["item"], name="answer_item_idx"),
        ]

    def __str__(self) -> str:
        return f"Answer of worker {self.worker_id} for item {self.item_id}"


class ConsensusLabel(models.Model):
    """The aggregated label of an item. Re-running consensus replaces a job's rows atomically."""

    item = models.OneToOneField(Item, on_delete=models.CASCADE, related_name="consensus")
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="consensus_labels")
    value = models.JSONField()
    confidence = models.FloatField(help_text="Posterior probability of the chosen label (0-1).")
    probabilities = models.JSONField(default=dict, blank=True)
    method = models.CharField(max_length=16)
    version = models.PositiveIntegerField(default=1)
    parameters = models.JSONField(default=dict, blank=True)
    answers_count = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["job", "confidence"], name="consensus_job_confidence_idx"),
            # Exports and the API page through a job's labels in item order.
            models.Index(fields=["job", "item"], name="consensus_job_item_idx"),
        ]

    def __str__(self) -> str:
        return f"Consensus for item {self.item_id}: {self.value}"
