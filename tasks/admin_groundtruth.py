"""Admin for Ground Truth: each labeling job's status, counters and failure reason, with Stop and
Refresh actions (both call services), and Ground Truth's own labels beside ours."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from tasks.models import GroundTruthLabel, Job, LabelingJob
from tasks.services.errors import ServiceError
from tasks.services.groundtruth.running import follow_labeling_job, stop_labeling_job
from workforce.admin_mixins import ReadOnlyAdmin
from workforce.audit import Actor
from workforce.marketplaces.base import MarketplaceError


@admin.register(LabelingJob)
class LabelingJobAdmin(ReadOnlyAdmin):
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

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(GroundTruthLabel)
class GroundTruthLabelAdmin(ReadOnlyAdmin):
    list_display = ("item", "job", "labeling_job_name", "task_type", "value", "confidence")
    list_filter = ("task_type",)
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
