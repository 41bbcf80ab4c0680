"""Qualification tests (versioned), their questions, workers' attempts and the grants they earn.

Versions: a test's family is ``(slug, version)``; ``root`` points at version 1 (null on version 1 itself)
and ``previous`` at the version it was copied from. Exactly one version per slug ``is_current``; workers
only start the current one. Editing a test that has attempts makes a new version
(``qualification.services.edit_test``), so an attempt or a grant always refers to the questions it saw.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from qualification.grading import AnswerType
from workforce.models import Worker

# A test is taken in one sitting; a worker who failed waits at most a year before the next attempt.
MAX_TIME_LIMIT = timedelta(days=7)
MAX_RETRY_DELAY = timedelta(days=365)


class TaskKind(models.TextChoices):
    """The same string values as ``tasks.models.TaskKind`` (this app must not import tasks)."""

    IMAGE_CLASSIFICATION = "image_classification", "Image classification (one label)"
    IMAGE_MULTILABEL = "image_multilabel", "Image classification (several labels)"
    TEXT_CLASSIFICATION = "text_classification", "Text classification (one label)"
    TEXT_MULTILABEL = "text_multilabel", "Text classification (several labels)"


class MultilabelScoring(models.TextChoices):
    EXACT = "exact", "Exact set (all or nothing)"
    JACCARD = "jaccard", "Jaccard overlap (partial credit)"


class QualificationTest(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, help_text="Names the test's family; every version shares it.")
    version = models.PositiveIntegerField(default=1)
    root = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="later_versions", editable=False
    )
    previous = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="next_versions", editable=False
    )
    is_current = models.BooleanField(default=True, editable=False)
    description = models.TextField(blank=True)
    task_kind = models.CharField(max_length=32, choices=TaskKind.choices, default=TaskKind.TEXT_CLASSIFICATION)
    labels = models.JSONField(default=list, blank=True, help_text="The label set offered when a question has none.")
    multilabel_scoring = models.CharField(
        max_length=8, choices=MultilabelScoring.choices, default=MultilabelScoring.EXACT
    )
    pass_score = models.PositiveSmallIntegerField(
        default=80, validators=[MinValueValidator(0), MaxValueValidator(100)], help_text="Score (0-100) to pass."
    )
    time_limit = models.DurationField(
        default=timedelta(minutes=10),
        validators=[MinValueValidator(timedelta(seconds=30)), MaxValueValidator(MAX_TIME_LIMIT)],
        help_text="Time for one attempt, from 30 seconds to 7 days.",
    )
    retry_delay = models.DurationField(
        default=timedelta(days=1),
        validators=[MinValueValidator(timedelta(0)), MaxValueValidator(MAX_RETRY_DELAY)],
        help_text="Wait after a failed attempt before the next one (0 to 365 days).",
    )
    max_attempts = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1)])
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["slug", "version"], name="qualtest_unique_slug_version"),
            models.UniqueConstraint(fields=["slug"], condition=Q(is_current=True), name="qualtest_one_current"),
            models.CheckConstraint(condition=Q(pass_score__lte=100), name="qualtest_pass_score_max_100"),
            models.CheckConstraint(condition=Q(max_attempts__gte=1), name="qualtest_max_attempts_positive"),
        ]
        indexes = [models.Index(fields=["is_current", "is_active"], name="qualtest_current_active_idx")]

    def __str__(self) -> str:
        return f"{self.name} (v{self.version})"

    @property
    def family_id(self) -> int:
        """The id of version 1 of this test (what grants are grouped by)."""
        return self.root_id or self.pk

    @property
    def is_multilabel(self) -> bool:
        return self.task_kind in (TaskKind.IMAGE_MULTILABEL, TaskKind.TEXT_MULTILABEL)


class Question(models.Model):
    """One question. ``payload`` is shown like an item (``text``, ``image_url``, or ``media`` binaries);
    ``accepted`` is never sent to a worker's page."""

    test = models.ForeignKey(QualificationTest, on_delete=models.CASCADE, related_name="questions")
    position = models.PositiveSmallIntegerField()
    identifier = models.CharField(max_length=64, help_text="Stable id (MTurk QuestionIdentifier).")
    title = models.CharField(max_length=200, blank=True)
    prompt = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    answer_type = models.CharField(
        max_length=8, choices=[(t.value, t.value) for t in AnswerType], default=AnswerType.SINGLE
    )
    options = models.JSONField(
        default=list, blank=True, help_text='[{"value": "m", "label": "Male"}, ...]; empty: the test\'s labels.'
    )
    accepted = models.JSONField(
        default=list,
        blank=True,
        help_text="Accepted answers (single/text: any of them; multi: the exact set; numeric: [number]).",
    )
    points = models.FloatField(default=1.0, validators=[MinValueValidator(0.0)], help_text="0 = not scored.")
    tolerance = models.FloatField(default=0.0, validators=[MinValueValidator(0.0)], help_text="Numeric answers.")

    class Meta:
        ordering = ["test_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["test", "position"], name="question_unique_position"),
            models.UniqueConstraint(fields=["test", "identifier"], name="question_unique_identifier"),
        ]

    def __str__(self) -> str:
        return f"{self.identifier} of test {self.test_id}"


class AttemptState(models.TextChoices):
    OPEN = "open", "Open"
    SUBMITTED = "submitted", "Submitted"
    EXPIRED = "expired", "Expired (time ran out)"


class Attempt(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    worker = models.ForeignKey(Worker, on_delete=models.PROTECT, related_name="qualification_attempts")
    test = models.ForeignKey(QualificationTest, on_delete=models.PROTECT, related_name="attempts")
    number = models.PositiveSmallIntegerField(help_text="1 for the worker's first attempt at this version.")
    state = models.CharField(max_length=12, choices=AttemptState.choices, default=AttemptState.OPEN)
    started_at = models.DateTimeField()
    deadline = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True)
    score = models.FloatField(null=True, blank=True)
    passed = models.BooleanField(default=False)
    answers = models.JSONField(default=dict, blank=True)
    credits = models.JSONField(default=dict, blank=True, help_text="Credit (0-1) per question identifier.")

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            # The attempt limit holds under concurrency: numbers are unique per worker and version.
            models.UniqueConstraint(fields=["worker", "test", "number"], name="attempt_unique_number"),
            models.UniqueConstraint(
                fields=["worker", "test"], condition=Q(state="open"), name="attempt_one_open_per_test"
            ),
        ]
        indexes = [models.Index(fields=["deadline"], condition=Q(state="open"), name="attempt_open_deadline_idx")]

    def __str__(self) -> str:
        return f"Attempt {self.number} of worker {self.worker_id} at test {self.test_id}"


class Grant(models.Model):
    """A worker's qualification from passing one version of a test; live while ``revoked_at`` is null."""

    worker = models.ForeignKey(Worker, on_delete=models.PROTECT, related_name="qualification_grants")
    test = models.ForeignKey(QualificationTest, on_delete=models.PROTECT, related_name="grants")
    family = models.ForeignKey(QualificationTest, on_delete=models.PROTECT, related_name="family_grants")
    version = models.PositiveIntegerField()
    score = models.FloatField()
    attempt = models.ForeignKey(Attempt, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    granted_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_reason = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-granted_at"]
        constraints = [models.UniqueConstraint(fields=["worker", "test"], name="grant_unique_worker_test")]
        indexes = [
            models.Index(fields=["worker", "family"], condition=Q(revoked_at__isnull=True), name="grant_live_idx"),
            models.Index(fields=["family", "score"], condition=Q(revoked_at__isnull=True), name="grant_family_idx"),
        ]

    def __str__(self) -> str:
        return f"Grant of test {self.test_id} v{self.version} to worker {self.worker_id}"

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None
