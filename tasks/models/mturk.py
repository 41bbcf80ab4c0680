"""What we keep about our work on Amazon Mechanical Turk beyond the core rows.

``MTurkHit`` holds a Hit's publish intent and result (the Hit row itself holds the HIT id as
``external_id``); ``MTurkBonus`` a bonus's intent, so a crash can never pay it twice; ``MTurkNotification``
the SQS messages seen (deduplicated on ``EventDocId``); ``MTurkQualificationType`` which MTurk
qualification stands for which of our tests, score or block; ``MTurkPageSubmission`` the answers posted on
our ExternalQuestion page, held until MTurk lists the assignment.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.db.models import Q

from qualification.models import QualificationTest
from tasks.models.core import Job
from tasks.models.work import Assignment, Hit
from workforce.models import Worker


class MTurkHit(models.Model):
    hit = models.OneToOneField(Hit, primary_key=True, on_delete=models.CASCADE, related_name="mturk")
    intent_at = models.DateTimeField(help_text="When a publisher last claimed this Hit to create it on MTurk.")
    attempts = models.PositiveSmallIntegerField(default=0)
    hit_type_id = models.CharField(max_length=64, blank=True)
    max_assignments = models.PositiveSmallIntegerField(help_text="Assignments the HIT was created with.")
    reward = models.DecimalField(max_digits=10, decimal_places=2)
    masters = models.BooleanField(default=False)
    auto_approval_delay = models.DurationField(default=timedelta(days=3))
    published_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    paused = models.BooleanField(
        default=False, help_text="Expired by a pause or cancel; the job's resume (or the reconcile) opens it again."
    )
    adopted = models.BooleanField(default=False, help_text="Found on MTurk after a lost reply, not created by us.")
    last_error = models.CharField(max_length=255, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="DeleteHIT done (housekeeping).")
    polled_at = models.DateTimeField(null=True, blank=True, help_text="When collect last listed its assignments.")

    class Meta:
        indexes = [
            models.Index(fields=["intent_at"], condition=Q(published_at__isnull=True), name="mturkhit_pending_idx"),
            models.Index(fields=["polled_at"], condition=Q(deleted_at__isnull=True), name="mturkhit_poll_idx"),
        ]

    def __str__(self) -> str:
        return f"MTurk HIT of Hit {self.hit_id}"


class MTurkBonusState(models.TextChoices):
    PENDING = "pending", "Pending: intent recorded, MTurk's answer not yet"
    SENT = "sent", "Sent"


class MTurkBonus(models.Model):
    job = models.ForeignKey(Job, on_delete=models.PROTECT, related_name="mturk_bonuses")
    assignment = models.ForeignKey(Assignment, on_delete=models.PROTECT, related_name="mturk_bonuses")
    worker = models.ForeignKey(Worker, on_delete=models.PROTECT, related_name="mturk_bonuses")
    amount = models.DecimalField(max_digits=10, decimal_places=2)
    reason = models.CharField(max_length=1024)
    idempotency_key = models.CharField(max_length=200, unique=True, help_text="The caller's key for this bonus.")
    token = models.CharField(max_length=64, unique=True, help_text="The UniqueRequestToken sent to MTurk.")
    state = models.CharField(max_length=8, choices=MTurkBonusState.choices, default=MTurkBonusState.PENDING)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["created_at"], condition=Q(state="pending"), name="mturkbonus_pending_idx")]

    def __str__(self) -> str:
        return f"Bonus {self.amount} to worker {self.worker_id} ({self.state})"


class MTurkNotification(models.Model):
    event_doc_id = models.CharField(max_length=128, unique=True)
    events = models.JSONField(default=list)
    received_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.event_doc_id


class MTurkPageSubmission(models.Model):
    """Answers a worker posted on our ExternalQuestion page, stored before the page forwards them to MTurk.

    The page's ids come from its query string, so anyone can post any assignment, worker and HIT id to it.
    A row here is therefore only a claim: it never counts towards a Hit, a consensus, a gold grade or pay.
    The assignment is recorded when MTurk itself lists it (``collect_mturk_work`` or an SQS notification),
    with MTurk's copy of the answers; that marks the claim ``confirmed_at`` when MTurk names the same worker
    and HIT. Claims that stay unconfirmed were never submitted to MTurk.
    """

    assignment_id = models.CharField(max_length=64, unique=True)
    hit = models.ForeignKey(Hit, on_delete=models.CASCADE, related_name="mturk_page_submissions")
    worker_id = models.CharField(max_length=64, help_text="The workerId the page was shown for.")
    answers = models.JSONField(default=dict, help_text="By item external id, as checked against the job.")
    received_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True, help_text="When MTurk listed this assignment.")

    class Meta:
        indexes = [
            models.Index(
                fields=["received_at"], condition=Q(confirmed_at__isnull=True), name="mturkpage_unconfirmed_idx"
            )
        ]

    def __str__(self) -> str:
        state = "confirmed" if self.confirmed_at else "unconfirmed"
        return f"Page submission {self.assignment_id} ({state})"


class MTurkQualificationPurpose(models.TextChoices):
    TEST = "test", "Our qualification test"
    SCORE = "score", "A job's worker score"
    BLOCK = "block", "Soft block (requirement: does not exist)"


class MTurkQualificationType(models.Model):
    purpose = models.CharField(max_length=8, choices=MTurkQualificationPurpose.choices)
    test = models.ForeignKey(QualificationTest, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    type_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=128)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["test"], condition=Q(purpose="test"), name="mturkqual_one_per_test"),
            models.UniqueConstraint(fields=["job"], condition=Q(purpose="score"), name="mturkqual_one_score_per_job"),
            models.UniqueConstraint(fields=["purpose"], condition=Q(purpose="block"), name="mturkqual_one_block"),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} {self.type_id}"
