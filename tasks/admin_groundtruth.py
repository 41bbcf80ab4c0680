"""Admin for Ground Truth: each labeling job's status, counters and failure reason, with Stop and
Refresh actions (both call services), and Ground Truth's own labels beside ours."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from tasks.models import GroundTruthLabel, Job, JobState, LabelingJob
from tasks.services.errors import ServiceError
from tasks.services.groundtruth.running import (
    SETTINGS,
    configure_labeling_job,
    follow_labeling_job,
    stop_labeling_job,
)
from workforce.admin_mixins import ReadOnlyAdmin, cached_values_filter
from workforce.audit import Actor
from workforce.marketplaces.base import MarketplaceError
from workforce.paginator import EstimatedCountPaginator

CONFIGURABLE = SETTINGS  # what an ops manager chooses (the name, ARN and status are the service's and AWS's)


class LabelingJobForm(forms.ModelForm):
    class Meta:
        model = LabelingJob
        fields = ("job", *CONFIGURABLE)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "job" in self.fields:  # only draft jobs without Ground Truth settings can get them
            self.fields["job"].queryset = Job.objects.filter(state=JobState.DRAFT, labeling_job__isnull=True)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.instance.pk and self.instance.arn:
            raise forms.ValidationError("This labeling job is already running on AWS; its settings are fixed.")
        return data


@admin.register(LabelingJob)
class LabelingJobAdmin(ReadOnlyAdmin):
    form = LabelingJobForm
    list_display = ("name", "job", "task_type", "workforce", "status", "counters", "failure_reason", "described_at")
    list_filter = ("status", "workforce", "task_type")
    search_fields = ("name", "arn", "job__name")
    actions = ["stop_selected", "refresh_selected"]

    def has_run_permission(self, request: HttpRequest) -> bool:
        """Stop and Refresh act on AWS: ops managers (``change_labelingjob``), not everyone who may look."""
        return request.user.has_perm("tasks.change_labelingjob")

    @admin.action(description="Stop the selected labeling jobs on AWS", permissions=["run"])
    def stop_selected(self, request: HttpRequest, queryset: QuerySet[LabelingJob]) -> None:
        self._run(request, queryset, stop_labeling_job, "Stop requested for")

    @admin.action(description="Refresh status and collect results now", permissions=["run"])
    def refresh_selected(self, request: HttpRequest, queryset: QuerySet[LabelingJob]) -> None:
        self._run(request, queryset, follow_labeling_job, "Refreshed")

    def _run(self, request: HttpRequest, queryset: QuerySet[LabelingJob], service: object, verb: str) -> None:
        actor = Actor.from_user(request.user)
        for labeling_job in queryset.select_related("job"):
            try:
                service(labeling_job=labeling_job, actor=actor)  # type: ignore[operator]
            except (ServiceError, MarketplaceError) as exc:
                self.message_user(request, f"{labeling_job.name}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{verb} {labeling_job.name}.", messages.SUCCESS)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("tasks.add_labelingjob")

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        if not request.user.has_perm("tasks.change_labelingjob"):
            return False
        return obj is None or not getattr(obj, "arn", "")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return ("job", *CONFIGURABLE) if obj is None else ("job", "name", *CONFIGURABLE, "status", "failure_reason")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        return ("job", "name", "status", "failure_reason")

    def save_model(self, request: HttpRequest, obj: LabelingJob, form: Any, change: bool) -> None:
        """Through the service, which names the labeling job, moves the job to Ground Truth and audits."""
        job = obj.job if change else form.cleaned_data["job"]
        saved = configure_labeling_job(
            job=job, actor=Actor.from_user(request.user), **{f: form.cleaned_data[f] for f in CONFIGURABLE}
        )
        obj.pk = saved.pk


@admin.register(GroundTruthLabel)
class GroundTruthLabelAdmin(ReadOnlyAdmin):
    paginator = EstimatedCountPaginator  # one label per item: no COUNT(*) on every page
    list_display = ("item", "job", "labeling_job_name", "task_type", "value", "confidence")
    list_filter = (cached_values_filter("task_type", "task type"),)
    search_fields = ("labeling_job_name", "item__external_id")


class LabelingJobInline(admin.StackedInline):
    """The job's Ground Truth run on its own page: status, counters and failure reason, read-only."""

    model = LabelingJob
    fields = ("name", "arn", "status", "counters", "failure_reason", "described_at", "collected_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name = "SageMaker Ground Truth labeling job"

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


# The job's change page shows its labeling job without touching the JobAdmin class's module.
_job_admin_class = type(admin.site.get_model_admin(Job))
_job_admin_class.inlines = [*_job_admin_class.inlines, LabelingJobInline]
