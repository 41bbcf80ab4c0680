"""Workforce models: workers on every marketplace, and the append-only audit trail."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Marketplace(models.TextChoices):
    INTERNAL = "internal", "Internal worker pool"
    MTURK = "mturk", "Amazon Mechanical Turk"
    GROUNDTRUTH = "groundtruth", "SageMaker Ground Truth"


class Worker(models.Model):
    """A person who works on a marketplace; internal-pool workers also have a Django user."""

    marketplace = models.CharField(max_length=16, choices=Marketplace.choices, default=Marketplace.INTERNAL)
    external_id = models.CharField(max_length=128, help_text="The marketplace's id for this worker.")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="worker"
    )
    display_name = models.CharField(max_length=150, blank=True)
    is_blocked = models.BooleanField(default=False)
    blocked_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["marketplace", "external_id"], name="worker_unique_external_id"),
        ]
        permissions = [("view_worker_identity", "Can see workers' marketplace ids unmasked (personal data)")]

    def __str__(self) -> str:
        # Never the marketplace id: it is personal data, shown only where masked (workforce.privacy).
        return self.display_name or f"{self.marketplace} worker {self.pk}"


class Invitation(models.Model):
    """A one-time link that brings a person into the internal pool (``workforce.invitations``).

    Only a digest of the link's token is stored: the token itself is shown once, to whoever created the
    invitation. With ``worker`` set (an imported worker, e.g. from MTurk) the person who accepts becomes
    that worker, keeping its history; without it they become a new internal-pool worker.
    """

    token_digest = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    worker = models.ForeignKey(
        Worker,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="invitations",
        help_text="The imported worker whose history the person who accepts takes over.",
    )
    note = models.CharField(max_length=255, blank=True, help_text="For staff only; the invitee never sees it.")
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["-created_at", "-id"], name="invitation_created_idx")]
        constraints = [
            # At most one usable invitation per imported worker: a new one revokes the earlier ones.
            models.UniqueConstraint(
                fields=["worker"],
                condition=models.Q(worker__isnull=False, accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_one_open_per_worker",
            ),
            models.CheckConstraint(
                condition=models.Q(accepted_at__isnull=True) | models.Q(revoked_at__isnull=True),
                name="invitation_not_accepted_and_revoked",
            ),
        ]

    def __str__(self) -> str:
        return f"Invitation {self.pk}"


class AuditEvent(models.Model):
    """One state change: who, what, when, before/after. Hash-chained; never updated or deleted."""

    class ActorKind(models.TextChoices):
        USER = "user", "User"
        WORKER = "worker", "Worker"
        SYSTEM = "system", "System process"

    created_at = models.DateTimeField(db_index=True)
    actor_kind = models.CharField(max_length=8, choices=ActorKind.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=64, db_index=True)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    previous_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["object_type", "object_id", "id"], name="audit_object_idx")]

    def __str__(self) -> str:
        return (
            f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action} {self.object_type}:{self.object_id}"
        )

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise RuntimeError("Audit events are append-only; they cannot be changed.")
        super().save(*args, **kwargs)

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise RuntimeError("Audit events are append-only; they cannot be deleted.")


class AuditChainHead(models.Model):
    """A single row that serialises appends to the hash chain (locked with SELECT ... FOR UPDATE)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_hash = models.CharField(max_length=64, default="0" * 64)
    count = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"Audit chain head ({self.count} events)"


class PendingAuditEvent(models.Model):
    """An event written by a hot path, waiting to be sealed into the chain (see ``workforce.audit``).

    Inserted without taking the chain lock; ``seal_audit_events`` moves these rows, in id order, into
    ``AuditEvent`` with their hashes and deletes them in the same transaction. On PostgreSQL a trigger
    refuses UPDATE of these rows (the sealer only ever deletes them).
    """

    created_at = models.DateTimeField()
    actor_kind = models.CharField(max_length=8, choices=AuditEvent.ActorKind.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=150)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=64)
    object_id = models.CharField(max_length=64)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    reason = models.TextField(blank=True)
    request_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"pending {self.action} {self.object_type}:{self.object_id}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise RuntimeError("Pending audit events cannot be changed; the sealer only moves them into the chain.")
        super().save(*args, **kwargs)
