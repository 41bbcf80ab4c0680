"""The labeling domain's definition: Job -> Item (the work on them, Hit -> Assignment -> Answer and
ConsensusLabel, is in ``tasks.models.work``).

State lives in ``TextChoices`` fields; transitions happen only in ``tasks.services`` through
conditional ``update()`` calls, never in ``save()``.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

from workforce.models import Marketplace

# An ISO 4217 style currency code: three capital letters (USD, EUR), the way the ledger and the reports group money.
currency_code = RegexValidator(
    r"\A[A-Z]{3}\Z", "Enter a currency as three capital letters (an ISO 4217 code such as USD or EUR)."
)


class TaskKind(models.TextChoices):
    IMAGE_CLASSIFICATION = "image_classification", "Image classification (one label)"
    IMAGE_MULTILABEL = "image_multilabel", "Image classification (several labels)"
    TEXT_CLASSIFICATION = "text_classification", "Text classification (one label)"
    TEXT_MULTILABEL = "text_multilabel", "Text classification (several labels)"
    IMAGE_BOXES = "image_boxes", "Bounding boxes (one class per box)"
    IMAGE_POLYGONS = "image_polygons", "Polygons (one class per polygon)"


MULTILABEL_KINDS = frozenset({TaskKind.IMAGE_MULTILABEL, TaskKind.TEXT_MULTILABEL})
SHAPE_KINDS = frozenset({TaskKind.IMAGE_BOXES, TaskKind.IMAGE_POLYGONS})
IMAGE_KINDS = frozenset({TaskKind.IMAGE_CLASSIFICATION, TaskKind.IMAGE_MULTILABEL, *SHAPE_KINDS})


class JobState(models.TextChoices):
    DRAFT = "draft", "Draft"
    PUBLISHED = "published", "Published"
    PAUSED = "paused", "Paused"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


class PayMode(models.TextChoices):
    PIECE = "piece", "Per assignment (the job's reward)"
    HOURLY = "hourly", "Hourly rate x measured active time"


class GoldMissAction(models.TextChoices):
    """What a job does with a submitted assignment whose gold answers are all wrong."""

    OFF = "off", "Do nothing"
    FLAG = "flag", "Flag the assignment for review"
    REJECT = "reject", "Reject the assignment"


class Job(models.Model):
    """What an ops manager configures and runs."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="One or two sentences shown in the worker's job list.")
    instructions = models.TextField(
        blank=True, help_text="The job's instructions (SOP, Markdown), shown on every task."
    )
    instructions_version = models.PositiveIntegerField(
        default=0, editable=False, help_text="The number of the latest JobInstructions version (0: none yet)."
    )
    task_kind = models.CharField(max_length=32, choices=TaskKind.choices, default=TaskKind.IMAGE_CLASSIFICATION)
    labels = models.JSONField(default=list, help_text="The label set, in display order (shortcut keys 1-9).")
    redundancy = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text="Answers wanted per item (assignments per Hit).",
    )
    items_per_hit = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(100)]
    )
    adaptive_min_answers = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text="Adaptive redundancy: answers every item gets at least (empty: off, the job asks for its "
        "redundancy). Hits are published wanting this many.",
    )
    adaptive_max_answers = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(50)],
        help_text="Adaptive redundancy: answers an item may get at most while its consensus is unsure.",
    )
    adaptive_target = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Adaptive redundancy: an item stops collecting answers once its posterior confidence reaches "
        "this (0-1).",
    )
    reward = models.DecimalField(
        max_digits=10,
        decimal_places=4,
        default=Decimal("0.05"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Pay per assignment (one Hit), in the job's currency.",
    )
    currency = models.CharField(max_length=3, default="USD", validators=[currency_code])
    assignment_duration = models.DurationField(
        default=timedelta(minutes=10), help_text="How long a worker holds a Hit before it returns to the pool."
    )
    marketplace = models.CharField(max_length=16, choices=Marketplace.choices, default=Marketplace.INTERNAL)
    internal_only = models.BooleanField(
        default=False,
        help_text="Sensitive data: this job's items are shown only to the internal worker pool, never published "
        "to an external marketplace.",
    )
    consensus_method = models.CharField(max_length=16, default="mv")
    mturk_options = models.JSONField(
        default=dict,
        blank=True,
        help_text='MTurk only, e.g. {"masters": true, "min_percent_approved": 95, "min_hits_approved": 500, '
        '"locales": ["US"], "question": "external" or "html", "keywords": ["images"], "lifetime_hours": 72, '
        '"auto_approval_hours": 72}.',
    )
    requirements = models.JSONField(
        default=list,
        blank=True,
        help_text='Who may work on the job, e.g. [{"kind": "test", "test": 3, "min_score": 80}, '
        '{"kind": "not_blocked"}, {"kind": "approved_assignments", "min": 100}].',
    )
    block_below_accuracy = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Honest floor: block a worker from the job once their gold answers are 14 times likelier from "
        "someone answering at chance than from someone this accurate (empty: never block).",
    )
    block_after_gold = models.PositiveSmallIntegerField(
        default=5, help_text="Gold answers a worker gives before the block policy may act."
    )
    trusted_test = models.ForeignKey(
        "qualification.QualificationTest",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Qualification granted to workers whose gold accuracy is confidently above the bar below.",
    )
    trusted_min_accuracy = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Grant the trusted qualification once the lower end of a worker's 90% gold-accuracy "
        "interval reaches this (after the block policy's minimum gold answers).",
    )
    training_mode = models.BooleanField(
        default=False,
        help_text="After a missed gold question, show the worker the correct answer and the instructions.",
    )
    gold_miss_action = models.CharField(
        max_length=8,
        choices=GoldMissAction.choices,
        default=GoldMissAction.OFF,
        help_text="What to do with a submitted assignment whose gold answers are all wrong.",
    )
    gold_rate = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(0.5)],
        help_text="Share of each worker's items that are hidden gold questions (0.1 = 1 in 10).",
    )
    gold_boost_rate = models.FloatField(
        default=0.0,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of gold for a worker whose gold evidence is still undecided (0: no boost).",
    )
    gold_boost_until = models.PositiveSmallIntegerField(
        default=0,
        blank=True,
        help_text="A worker gets gold at the boosted rate until the block policy has decided about them or they "
        "have given this many gold answers (0: no boost).",
    )
    gold_leases_priced = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text="Gold leases the publish reservation priced that are not handed out yet; each gold lease "
        "beyond them reserves its own cost (``tasks.services.pool``).",
    )
    prelabel_model = models.CharField(
        max_length=100,
        blank=True,
        help_text="Show this model's predictions to workers as pre-labels to confirm or correct (empty: off).",
    )
    task_template = models.TextField(
        blank=True,
        help_text="An MTurk HTML layout with ${column} placeholders, filled with each item's fields (HTML-escaped) "
        "and shown to internal workers in a sandboxed frame instead of the label buttons. One item per Hit.",
    )
    answer_field = models.CharField(
        max_length=200,
        blank=True,
        help_text="The form field (MTurk Answer.<name>) that holds the label, or the group of "
        "<name>.<label> check boxes or radio buttons. Used by the task template and by MTurk results files.",
    )
    pay_mode = models.CharField(
        max_length=8,
        choices=PayMode.choices,
        default=PayMode.PIECE,
        help_text="Internal pool pay: the reward per approved assignment, or the hourly rate for the time worked "
        "(accepted to submitted, at most the assignment duration).",
    )
    hourly_rate = models.DecimalField(
        max_digits=10,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Internal pool pay per hour of active time (hourly pay mode).",
    )
    auto_approve_after = models.DurationField(
        null=True,
        blank=True,
        help_text="Approve submitted internal-pool work this long after submission (0: at once); assignments "
        "that failed gold are rejected instead. Empty: only reviewers approve.",
    )
    budget_cap = models.DecimalField(
        max_digits=14,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Most this job may commit, fees included (empty: no cap).",
    )
    budget_reserved = models.DecimalField(
        max_digits=14,
        decimal_places=4,
        default=Decimal("0"),
        editable=False,
        help_text="Worst-case cost reserved and not released (kept by tasks.services.budget).",
    )
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.DRAFT, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    speed_scores_through = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="The latest submission the workers' speed scores include (kept by tasks.services.speed).",
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(condition=Q(reward__gte=0), name="job_reward_not_negative"),
            models.CheckConstraint(condition=Q(redundancy__gte=1), name="job_redundancy_positive"),
            models.CheckConstraint(
                condition=Q(
                    adaptive_min_answers__isnull=True, adaptive_max_answers__isnull=True, adaptive_target__isnull=True
                )
                | Q(
                    adaptive_min_answers__gte=1,
                    adaptive_max_answers__gte=models.F("adaptive_min_answers"),
                    adaptive_target__gt=0,
                    adaptive_target__lte=1,
                ),
                name="job_adaptive_all_or_none",
            ),
            models.CheckConstraint(
                condition=Q(budget_cap__isnull=True) | Q(budget_reserved__lte=models.F("budget_cap")),
                name="job_reserved_within_cap",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_adaptive(self) -> bool:
        """Adaptive redundancy is on (all three adaptive fields set)."""
        return self.adaptive_min_answers is not None

    @property
    def answers_per_hit(self) -> int:
        """Assignments a Hit is published wanting: the fixed redundancy, or the adaptive minimum (1 when a
        pre-label model may stand in for the second annotator: adaptive redundancy asks for the rest)."""
        if self.adaptive_min_answers is None:
            return self.redundancy
        return 1 if self.prelabel_model else self.adaptive_min_answers

    @property
    def requires_masters(self) -> bool:
        """MTurk: the job's HITs require the Masters qualification (MTurk charges 5% more on their rewards)."""
        return isinstance(self.mturk_options, dict) and bool(self.mturk_options.get("masters", False))

    @property
    def is_multilabel(self) -> bool:
        return self.task_kind in MULTILABEL_KINDS

    @property
    def is_shapes(self) -> bool:
        return self.task_kind in SHAPE_KINDS

    @property
    def is_image(self) -> bool:
        return self.task_kind in IMAGE_KINDS


class Item(models.Model):
    """One data object to label. ``payload`` holds ``image_url`` or ``text`` plus any extra columns."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=255)
    payload = models.JSONField()
    payload_hash = models.CharField(max_length=64, help_text="sha256 of the canonical payload (re-import check).")
    is_gold = models.BooleanField(default=False, help_text="A hidden gold question with a known answer.")
    gold_answer = models.JSONField(null=True, blank=True, help_text="The known answer of a gold item.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "external_id"], name="item_unique_external_id")]
        indexes = [
            # The admin's and the API's item lists of one job, newest or oldest first.
            models.Index(fields=["job", "id"], name="item_job_id_idx"),
            # A job's gold set, read when gold is placed on a worker's page.
            models.Index(fields=["job", "id"], condition=Q(is_gold=True), name="item_job_gold_idx"),
        ]

    def __str__(self) -> str:
        return self.external_id
