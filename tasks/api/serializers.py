"""API serializers: shapes in and out. Validation only; writes happen in services."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from qualification.selectors import validate_job_requirements
from tasks.aggregation.registry import CATEGORICAL
from tasks.api.converters import MAX_ID
from tasks.models import (
    Assignment,
    AssignmentState,
    ConsensusLabel,
    DatasetVersion,
    Item,
    Job,
    LabelExport,
    WorkerJobScore,
)
from tasks.services.exports import KNOWN_FORMATS
from tasks.services.jobs import (
    ADAPTIVE_FORM_FIELDS,
    check_adaptive_settings,
    check_budget_and_prelabels,
    check_durations,
)
from workforce.privacy import worker_id_for

JOB_WRITABLE = (
    "name",
    "description",
    "instructions",
    "task_kind",
    "labels",
    "items_per_hit",
    "redundancy",
    "consensus_method",
    "reward",
    "currency",
    "assignment_duration",
    "marketplace",
    "training_mode",
    "gold_rate",
    "block_below_accuracy",
    "block_after_gold",
    "requirements",
    "adaptive_min_answers",
    "adaptive_max_answers",
    "adaptive_target",
    "budget_cap",
    "prelabel_model",
)


class JobSerializer(serializers.ModelSerializer):
    labels = serializers.ListField(child=serializers.CharField(max_length=100), min_length=2, max_length=200)
    consensus_method = serializers.ChoiceField(choices=list(CATEGORICAL), default="mv")
    adaptive_min_answers = serializers.IntegerField(
        min_value=1,
        max_value=50,
        allow_null=True,
        required=False,
        help_text="Adaptive redundancy: answers every item gets at least (null: off, every item gets `redundancy`).",
    )
    adaptive_max_answers = serializers.IntegerField(
        min_value=1,
        max_value=50,
        allow_null=True,
        required=False,
        help_text="Adaptive redundancy: answers an item may get at most while its label is unsure.",
    )
    adaptive_target = serializers.FloatField(
        allow_null=True,
        required=False,
        help_text="Adaptive redundancy: an item stops collecting answers once its confidence reaches this "
        "(above 0.5, below 1). Set all three adaptive fields or none; not on Ground Truth jobs.",
    )
    confirm_instructions_change = serializers.BooleanField(
        write_only=True, default=False, help_text="Required to change the instructions of a published or paused job."
    )

    class Meta:
        model = Job
        fields = (
            "id",
            *JOB_WRITABLE,
            "confirm_instructions_change",
            "instructions_version",
            "state",
            "created_at",
            "published_at",
            "completed_at",
        )
        read_only_fields = ("id", "instructions_version", "state", "created_at", "published_at", "completed_at")
        # The fields' types and bounds come from the model; the API says more about what is refused.
        extra_kwargs = {
            "budget_cap": {
                "help_text": "Most this job may commit, fees included, in its currency (a decimal string such as "
                '"250.00"; null: no cap). Refused below what the job has already reserved.'
            },
            "prelabel_model": {
                "help_text": "Show this model's predictions to workers as pre-labels to confirm or correct: a model "
                "whose predictions were imported for this job (empty: off)."
            },
        }

    def validate_labels(self, labels: list[str]) -> list[str]:
        names = [x.strip() for x in labels]
        if not all(names):
            raise serializers.ValidationError("Labels cannot be blank.")
        if len(set(names)) != len(names):
            raise serializers.ValidationError("Each label must appear once.")
        return names

    def validate_requirements(self, requirements: Any) -> Any:
        errors = validate_job_requirements(requirements or [])
        if errors:
            raise serializers.ValidationError(errors)
        return requirements or []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # The adaptive settings are checked together with the job's kind and marketplace, as stored when a
        # PATCH leaves them out.
        current = self.instance if isinstance(self.instance, Job) else Job()
        probe = Job(**{name: attrs.get(name, getattr(current, name)) for name in ADAPTIVE_FORM_FIELDS})
        problems = check_adaptive_settings(probe)
        problems.update(
            check_durations(
                assignment_duration=attrs.get("assignment_duration"),
                auto_approve_after=attrs.get("auto_approve_after"),
            )
        )
        problems.update(
            check_budget_and_prelabels(
                job_id=current.pk,
                budget_cap=attrs.get("budget_cap", current.budget_cap),
                prelabel_model=attrs.get("prelabel_model", current.prelabel_model),
            )
        )
        if problems:
            raise serializers.ValidationError(problems)
        return attrs


class AcceptedSerializer(serializers.Serializer):
    """The answer to work started in the background (publish, consensus)."""

    job = serializers.IntegerField()
    detail = serializers.CharField()


class AdaptiveProgressSerializer(serializers.Serializer):
    min_answers = serializers.IntegerField()
    max_answers = serializers.IntegerField(help_text="The most answers a Hit may get (MTurk's rules included).")
    target = serializers.FloatField()
    hits_collecting = serializers.IntegerField(help_text="Hits still open for answers.")
    hits_stopped_early = serializers.IntegerField(help_text="Complete Hits that stopped below the maximum.")
    hits_at_maximum = serializers.IntegerField(help_text="Hits that want the maximum number of answers.")
    extra_answers_requested = serializers.IntegerField(
        help_text="Answers asked for beyond what the Hits were published wanting."
    )
    answers_saved = serializers.IntegerField(help_text="Answers the complete Hits did not need, against the maximum.")
    items_at_target = serializers.IntegerField(help_text="Items whose consensus confidence reaches the target.")
    skills_fitted_at = serializers.DateTimeField(allow_null=True)
    skills_answers_at_fit = serializers.IntegerField(help_text="Answers the last full re-fit of worker skills saw.")
    budget_exhausted_at = serializers.DateTimeField(
        allow_null=True, help_text="When an extra answer was first refused for lack of budget."
    )
    budget_step = serializers.FloatField(
        allow_null=True,
        help_text="While the budget cannot pay every extra answer: only items less settled than this confidence "
        "get answers for now (the least settled first); null when the budget pays them all.",
    )


class JobStatusSerializer(serializers.Serializer):
    job = serializers.IntegerField()
    state = serializers.CharField()
    hits = serializers.IntegerField()
    hits_complete = serializers.IntegerField()
    answers_wanted = serializers.IntegerField()
    answers_submitted = serializers.IntegerField()
    percent = serializers.IntegerField()
    labeled_items = serializers.IntegerField()
    confident_items = serializers.IntegerField()
    adaptive = AdaptiveProgressSerializer(
        allow_null=True, help_text="Adaptive redundancy's progress (null when the job has fixed redundancy)."
    )


class ItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = Item
        fields = ("id", "external_id", "payload", "is_gold", "gold_answer", "created_at")


class ItemFilter(serializers.Serializer):
    is_gold = serializers.BooleanField(required=False, allow_null=True, default=None)
    labeled = serializers.BooleanField(required=False, allow_null=True, default=None)
    external_id = serializers.CharField(required=False, default="")


class BulkImportSerializer(serializers.Serializer):
    """Either a file (multipart ``file``, CSV or JSON Lines) or a JSON list of ``items``."""

    file = serializers.FileField(required=False)
    format = serializers.ChoiceField(choices=("csv", "jsonl"), required=False)
    items = serializers.ListField(child=serializers.DictField(), required=False, max_length=100_000)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if bool(data.get("file")) == bool(data.get("items")):
            raise serializers.ValidationError("Send either a file or a non-empty list of items, not both.")
        return data


class ImportResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    rows = serializers.IntegerField()
    hits_created = serializers.IntegerField()


class WorkerIdField(serializers.CharField):
    """A worker's marketplace id as the request's user may see it (masked without the identity permission,
    ``workforce.privacy``), read from ``worker.external_id``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(source="worker.external_id", read_only=True, **kwargs)

    def to_representation(self, value: Any) -> str:
        request = self.context.get("request")
        return worker_id_for(getattr(request, "user", None), str(value))


class AssignmentSerializer(serializers.ModelSerializer):
    worker = WorkerIdField()

    class Meta:
        model = Assignment
        fields = (
            "id",
            "uuid",
            "hit",
            "worker",
            "state",
            "marketplace",
            "accepted_at",
            "submitted_at",
            "reviewed_at",
            "reward",
            "instructions_version",
        )


class AssignmentFilter(serializers.Serializer):
    state = serializers.ChoiceField(choices=AssignmentState.choices, required=False, default="")
    worker = serializers.CharField(required=False, default="")


class ConsensusLabelSerializer(serializers.ModelSerializer):
    external_id = serializers.CharField(source="item.external_id")

    class Meta:
        model = ConsensusLabel
        fields = ("item", "external_id", "value", "confidence", "probabilities", "method", "version", "answers_count")


class ConsensusFilter(serializers.Serializer):
    min_confidence = serializers.FloatField(required=False, min_value=0, max_value=1, allow_null=True, default=None)
    max_confidence = serializers.FloatField(required=False, min_value=0, max_value=1, allow_null=True, default=None)
    label = serializers.CharField(required=False, allow_null=True, default=None)  # type: ignore[assignment]


class WorkerScoreSerializer(serializers.ModelSerializer):
    worker = WorkerIdField()
    marketplace = serializers.CharField(source="worker.marketplace")

    class Meta:
        model = WorkerJobScore
        fields = (
            "worker",
            "marketplace",
            "gold_answers",
            "accuracy",
            "accuracy_low",
            "accuracy_high",
            "agreement",
            "answers",
            "median_seconds",
            "fast_share",
            "updated_at",
        )


class CostSummarySerializer(serializers.Serializer):
    job = serializers.IntegerField()
    currency = serializers.CharField()
    total = serializers.DecimalField(max_digits=16, decimal_places=4)
    committed = serializers.DecimalField(max_digits=16, decimal_places=4)
    charged = serializers.DecimalField(max_digits=16, decimal_places=4)
    by_kind = serializers.DictField(child=serializers.DecimalField(max_digits=16, decimal_places=4))
    by_marketplace = serializers.DictField(child=serializers.DecimalField(max_digits=16, decimal_places=4))


class DatasetVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = DatasetVersion
        fields = (
            "number",
            "method",
            "parameters",
            "consensus_version",
            "row_count",
            "sha256",
            "size_bytes",
            "note",
            "created_at",
        )


class DatasetVersionCreateSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=255, required=False, default="", allow_blank=True)


class VersionDiffQuerySerializer(serializers.Serializer):
    against = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="The older version's number.")


class VersionDiffSerializer(serializers.Serializer):
    old = serializers.IntegerField()
    new = serializers.IntegerField()
    summary = serializers.DictField(child=serializers.IntegerField())
    added = serializers.ListField(child=serializers.CharField())
    removed = serializers.ListField(child=serializers.CharField())
    changed = serializers.ListField(child=serializers.DictField())


class ExportQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=KNOWN_FORMATS, default="jsonl", help_text="The export format.")
    answers = serializers.BooleanField(default=False)
    scores = serializers.BooleanField(default=False)
    cost = serializers.BooleanField(default=False)
    min_confidence = serializers.FloatField(required=False, min_value=0, max_value=1, allow_null=True, default=None)
    version = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID, allow_null=True, default=None)


class LabelExportSerializer(serializers.ModelSerializer):
    percent = serializers.IntegerField(read_only=True)

    class Meta:
        model = LabelExport
        fields = ("id", "format", "options", "state", "rows_done", "rows_total", "percent", "sha256", "error")
