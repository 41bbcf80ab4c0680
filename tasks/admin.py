"""The ops manager's console. Actions and forms call services; nothing here writes models directly."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from tasks.admin_filters import RecentJobFilter
from tasks.admin_finance import JobFinanceMixin, ReviewActionsMixin
from tasks.admin_forms import ItemImportForm, JobForm
from tasks.admin_quality import FlaggedFilter
from tasks.admin_uploads import run_upload
from tasks.console.job_admin import CONSOLE_ACTIONS, JobConsoleMixin, download_export
from tasks.models import (
    Answer,
    Assignment,
    Hit,
    Item,
    Job,
    JobBlock,
    JobState,
    WorkerJobScore,
)
from tasks.selectors import get_job_totals, list_job_progress
from tasks.services.blocks import lift_job_blocks
from tasks.services.errors import QueueUnavailable, ServiceError
from tasks.services.imports import import_items
from tasks.services.jobs import (
    POSTED_PRICE_FIELDS,
    STRUCTURAL_FIELDS,
    configure_job,
)
from tasks.services.publishing import cancel_job, pause_job, request_publish, resume_job
from tasks.tasks import QUEUE_UNREACHABLE, compute_consensus_task, enqueue
from tasks.worker_scores import scorecard_earnings
from workforce.admin_mixins import AuditHistoryMixin, IdentitySearchMixin, ReadOnlyAdmin
from workforce.audit import Actor
from workforce.ids import parse_id
from workforce.models import Marketplace
from workforce.paginator import EstimatedCountPaginator


def _progress_bar(percent: int) -> str:
    return format_html(
        '<div style="width:140px;background:#e8ebf0;border-radius:4px;height:10px;display:inline-block">'
        '<div style="width:{}%;background:#2f6fed;height:10px;border-radius:4px"></div></div> {}%',
        percent,
        percent,
    )


@admin.register(Job)
class JobAdmin(JobFinanceMixin, JobConsoleMixin, AuditHistoryMixin, admin.ModelAdmin):
    audit_object_type = "job"
    form = JobForm
    list_display = ("name", "state", "task_kind", "marketplace", "redundancy", "reward", "progress", "created_at")
    list_filter = ("state", "task_kind", "marketplace")
    search_fields = ("name",)
    readonly_fields = (
        "state",
        "created_by",
        "created_at",
        "updated_at",
        "published_at",
        "completed_at",
        "budget_reserved",
    )
    actions = [
        "publish_selected",
        "pause_selected",
        "resume_selected",
        "cancel_selected",
        "recompute_consensus",
        *CONSOLE_ACTIONS,
        "top_up_fair_pay_selected",
    ]
    fieldsets = (
        (
            "Status",
            {
                "fields": (
                    "state",
                    ("published_at", "completed_at"),
                    ("created_by", "created_at", "updated_at"),
                )
            },
        ),
        (None, {"fields": ("name", "description", "instructions", "confirm_instructions_change")}),
        ("Task", {"fields": ("task_kind", "labels", "items_per_hit", "redundancy", "consensus_method")}),
        ("Adaptive redundancy", {"fields": ("adaptive_min_answers", "adaptive_max_answers", "adaptive_target")}),
        ("Pay and time", {"fields": ("reward", "currency", "assignment_duration", "marketplace", "internal_only")}),
        ("MTurk layout", {"fields": ("task_template", "answer_field"), "classes": ("collapse",)}),
        (
            "Pay, review and budget",
            {"fields": ("pay_mode", "hourly_rate", "auto_approve_after", "budget_cap", "budget_reserved")},
        ),
        (
            "Quality",
            {
                "fields": (
                    "requirements",
                    "training_mode",
                    "prelabel_model",
                    "gold_rate",
                    "block_below_accuracy",
                    "block_after_gold",
                    "gold_boost_rate",
                    "gold_boost_until",
                    "gold_miss_action",
                    "trusted_test",
                    "trusted_min_accuracy",
                )
            },
        ),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Job]:
        return super().get_queryset(request).select_related("created_by")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # jobs are cancelled (audited), never deleted with their work and costs

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        changelist = super().get_changelist_instance(request)
        # One grouped query for the progress of every job on the page.
        self._progress = list_job_progress([job.pk for job in changelist.result_list])
        return changelist

    @admin.display(description="Progress")
    def progress(self, job: Job) -> str:
        p = getattr(self, "_progress", {}).get(job.pk)
        return _progress_bar(p.percent) if p else "-"

    def get_readonly_fields(self, request: HttpRequest, obj: Job | None = None) -> Any:
        readonly = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.state != JobState.DRAFT:
            readonly += [*STRUCTURAL_FIELDS, "currency"]  # work already handed out depends on them
            if obj.marketplace != Marketplace.INTERNAL:
                readonly += list(POSTED_PRICE_FIELDS)  # the marketplace holds the work at its posted price
        return readonly

    def save_model(self, request: HttpRequest, obj: Job, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user  # type: ignore[assignment]
        # The form asked for confirmation before a running job's instructions could change.
        configure_job(job=obj, actor=Actor.from_user(request.user), instructions_confirmed=True, user=request.user)

    def get_urls(self) -> list[URLPattern]:
        custom = [
            path("<int:job_id>/import/", self.admin_site.admin_view(self.import_view), name="tasks_job_import"),
            path("<int:job_id>/state/<str:verb>/", self.admin_site.admin_view(self.state_view), name="tasks_job_state"),
            path(
                "<int:job_id>/exports/<int:export_id>/download/",
                self.admin_site.admin_view(download_export),
                name="tasks_job_export_download",
            ),
        ]
        return custom + super().get_urls()

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        extra_context = extra_context or {}
        # a tampered id (not a number the database can hold) falls through to Django's "doesn't exist"
        number = parse_id(object_id)
        job = Job.objects.filter(pk=number).first() if number is not None else None
        if job is not None:
            extra_context["import_url"] = reverse("admin:tasks_job_import", args=[job.pk])
            # The progress and cost above the form (the "Status" fieldset has the state and dates).
            totals = get_job_totals(job)
            extra_context.update(self.finance_context(job, totals=totals))
            extra_context.update(self.console_context(job, viewer=request.user, totals=totals))
            extra_context["state_buttons"] = self.state_buttons(request, job)
        return super().change_view(request, object_id, form_url, extra_context)

    def import_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        if not request.user.has_perm("tasks.add_item"):
            raise PermissionDenied("You do not have permission to import items.")
        job = get_object_or_404(Job, pk=job_id)
        form = ItemImportForm(request.POST or None, request.FILES or None)
        row_errors: list[Any] = []
        if request.method == "POST" and form.is_valid():
            result, row_errors = run_upload(
                form,
                lambda upload, data: import_items(
                    job=job,
                    stream=upload,
                    filename=upload.name,
                    fmt=data["format"] or None,
                    actor=Actor.from_user(request.user),
                ),
            )
            if result is not None:
                messages.success(
                    request, f"Imported {result.created} new item(s); {result.unchanged} were already there unchanged."
                )
                return HttpResponseRedirect(reverse("admin:tasks_job_change", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "job": job,
            "form": form,
            "row_errors": row_errors,
            "title": f"Import items into “{job.name}”",
        }
        return render(request, "admin/tasks/job/import.html", context)

    def _run(self, request: HttpRequest, queryset: QuerySet[Job], service: Any, verb: str) -> None:
        done = 0
        for job in queryset:
            try:
                service(job=job, actor=Actor.from_user(request.user))
                done += 1
            except QueueUnavailable:  # the state changed; the marketplace update could not be queued
                done += 1
                self.message_user(
                    request,
                    f"{job.name}: {QUEUE_UNREACHABLE}, so its marketplace was not told yet "
                    "(the hourly MTurk reconcile will).",
                    messages.ERROR,
                )
            except ServiceError as exc:
                self.message_user(request, f"{job.name}: {exc}", messages.ERROR)
        if done:
            self.message_user(request, f"{verb} {done} job(s).", messages.SUCCESS)

    @admin.action(description="Publish selected jobs to their marketplace", permissions=["change"])
    def publish_selected(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        for job in queryset:
            try:
                # Building Hits for a big job takes a while: it runs in Celery (inline without a broker).
                request_publish(job=job, actor=Actor.from_user(request.user))
            except QueueUnavailable:
                self.message_user(
                    request,
                    f"{job.name}: {QUEUE_UNREACHABLE}, so it was not published; try again later.",
                    messages.ERROR,
                )
            except ServiceError as exc:
                self.message_user(request, f"{job.name}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{job.name}: publishing started.", messages.SUCCESS)

    @admin.action(description="Recompute consensus labels of selected jobs", permissions=["change"])
    def recompute_consensus(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        jobs = list(queryset.annotate(answered=Exists(Answer.objects.filter(job_id=OuterRef("pk")))))
        queued = 0
        for job in jobs:
            if not job.answered:
                self.message_user(request, f"{job} has no answers yet: nothing to aggregate.", messages.WARNING)
                continue
            # Runs in Celery (inline without a broker); big jobs take seconds.
            try:
                transaction.on_commit(partial(enqueue, compute_consensus_task, job_id=job.pk, user_id=request.user.pk))
            except QueueUnavailable as exc:
                self.message_user(request, f"{job}: {exc}", messages.ERROR)
                break
            queued += 1
        if queued:
            self.message_user(request, f"Consensus queued for {queued} job(s).", messages.SUCCESS)

    @admin.action(description="Pause selected jobs", permissions=["change"])
    def pause_selected(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._run(request, queryset, pause_job, "Paused")

    @admin.action(description="Resume selected jobs", permissions=["change"])
    def resume_selected(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._run(request, queryset, resume_job, "Resumed")

    @admin.action(description="Cancel selected jobs", permissions=["change"])
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._run(request, queryset, cancel_job, "Cancelled")


@admin.register(Item)
class ItemAdmin(AuditHistoryMixin, ReadOnlyAdmin):
    audit_object_type = "item"
    paginator = EstimatedCountPaginator  # no COUNT(*) over a 500,000-item job
    list_display = ("external_id", "job", "created_at")
    list_filter = (RecentJobFilter,)
    search_fields = ("=external_id",)
    list_select_related = ("job",)
    raw_id_fields = ("job",)


@admin.register(Hit)
class HitAdmin(ReadOnlyAdmin):
    paginator = EstimatedCountPaginator  # one Hit per item or more: no COUNT(*) on every page
    list_display = ("uuid", "job", "is_gold", "state", "slots_taken", "assignments_submitted", "assignments_wanted")
    list_filter = ("state", "is_gold", RecentJobFilter)
    list_select_related = ("job",)


class AnswerInline(admin.TabularInline):
    model = Answer
    fields = ("item", "value", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Answer]:
        return super().get_queryset(request).select_related("item")  # the item column: no query per answer

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Assignment)
class AssignmentAdmin(ReviewActionsMixin, IdentitySearchMixin, AuditHistoryMixin, ReadOnlyAdmin):
    audit_object_type = "assignment"
    paginator = EstimatedCountPaginator
    list_display = ("short_id", "job", "worker", "state", "accepted_at", "submitted_at")
    list_filter = ("state", FlaggedFilter, RecentJobFilter)
    list_select_related = ("job", "worker")
    search_fields = ("=uuid", "=worker__external_id")
    identity_search_fields = ("=worker__external_id",)
    inlines = [AnswerInline]

    @admin.display(description="assignment", ordering="pk")
    def short_id(self, obj: Assignment) -> str:
        """The UUID's first block, enough to tell rows apart (the full one is on the assignment's page)."""
        return str(obj.uuid).split("-", 1)[0]


@admin.register(WorkerJobScore)
class WorkerJobScoreAdmin(IdentitySearchMixin, ReadOnlyAdmin):
    """Scorecards: each worker's gold accuracy (with its 90% interval) per job."""

    list_display = (
        "worker",
        "job",
        "gold_answers",
        "accuracy_pct",
        "interval",
        "agreement",
        "answers",
        "median_seconds",
        "fast_share",
        "earnings",
        "blocked",
        "updated_at",
    )
    list_filter = (RecentJobFilter,)
    list_select_related = ("worker", "job")
    search_fields = ("=worker__external_id", "worker__display_name")
    identity_search_fields = ("=worker__external_id",)
    ordering = ("accuracy",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[WorkerJobScore]:
        # Earnings (ledger) and blocks come with the list query as subqueries: no query per row.
        blocked = JobBlock.objects.filter(job_id=OuterRef("job_id"), worker_id=OuterRef("worker_id"), lifted_at=None)
        return super().get_queryset(request).annotate(earned=scorecard_earnings(), is_blocked=Exists(blocked))

    @admin.display(description="Earnings", ordering="earned")
    def earnings(self, score: WorkerJobScore) -> str:
        return f"{score.earned:.2f} {score.job.currency}"  # type: ignore[attr-defined]

    @admin.display(description="Blocked", boolean=True, ordering="is_blocked")
    def blocked(self, score: WorkerJobScore) -> bool:
        return bool(score.is_blocked)  # type: ignore[attr-defined]

    @admin.display(description="Gold accuracy", ordering="accuracy")
    def accuracy_pct(self, score: WorkerJobScore) -> str:
        return "-" if score.accuracy is None else f"{score.accuracy:.0%}"

    @admin.display(description="90% interval")
    def interval(self, score: WorkerJobScore) -> str:
        if score.accuracy_low is None or score.accuracy_high is None:
            return "-"
        return f"{score.accuracy_low:.0%} - {score.accuracy_high:.0%}"


@admin.register(JobBlock)
class JobBlockAdmin(ReadOnlyAdmin):
    list_display = ("worker", "job", "reason", "created_at", "lifted_at")
    list_filter = (RecentJobFilter, "lifted_at")
    list_select_related = ("worker", "job")
    readonly_fields = ("job", "worker", "reason", "evidence", "created_at", "lifted_at")
    actions = ["lift_selected"]

    def has_lift_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tasks.change_jobblock")

    @admin.action(description="Lift the selected blocks (the worker may work on the job again)", permissions=["lift"])
    def lift_selected(self, request: HttpRequest, queryset: QuerySet[JobBlock]) -> None:
        # One set-based call: blocks someone else lifted first are skipped, not counted.
        lifted = lift_job_blocks(blocks=queryset, actor=Actor.from_user(request.user), reason="Lifted in the admin.")
        self.message_user(request, f"Lifted {len(lifted)} block(s).", messages.SUCCESS)


# Admin pages that live in their own modules register themselves on import.
from tasks import admin_groundtruth, admin_mturk, admin_predictions  # noqa: E402, F401
