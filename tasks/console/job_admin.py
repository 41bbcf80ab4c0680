"""The job admin's console: the at-a-glance page, instruction versions, and actions that call services.

``JobConsoleMixin`` is mixed into ``tasks.admin.JobAdmin``; everything here parses input, calls one
service or selector, and renders.
"""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.html import format_html

from tasks.console.charts import bar_chart, heat_map, progress_bar
from tasks.console.markdown import render_markdown
from tasks.console_selectors import list_recent_exports
from tasks.dashboard import get_job_dashboard, get_job_glance
from tasks.models import Job, JobInstructions, JobState
from tasks.selectors import JobTotals
from tasks.services.errors import ServiceError
from tasks.services.exports import request_label_export
from tasks.services.instructions import RUNNING_STATES
from tasks.services.job_templates import clone_job
from tasks.services.more_answers import request_more_answers
from tasks.services.review_batch import GoldApprovalResult, approve_passing_gold
from workforce.audit import Actor
from workforce.privacy import worker_id_for

CONSOLE_ACTIONS = [
    "request_one_more_answer",
    "request_more_where_unsure",
    "clone_selected",
    "export_csv",
    "export_jsonl",
    "approve_passing_gold",
]
UNSURE_BELOW = 0.9


class InstructionsConfirmMixin(forms.ModelForm):
    """Adds the confirmation a running job's instructions change needs."""

    confirm_instructions_change = forms.BooleanField(
        required=False,
        label="Confirm the new instructions",
        help_text="Needed when the job is published or paused: workers already follow the current version.",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        job = self.instance
        if (
            job.pk is not None
            and job.state in RUNNING_STATES
            and "instructions" in self.changed_data
            and not data.get("confirm_instructions_change")
        ):
            self.add_error(
                "confirm_instructions_change",
                f"This job is {job.state}. Tick the box to give new assignments the changed instructions.",
            )
        return data


def _glance_context(job: Job, totals: JobTotals | None) -> dict[str, Any]:
    glance = get_job_glance(job, totals=totals)
    return {
        "glance": glance,
        "answers_bar": progress_bar(glance.progress.answers_submitted, glance.progress.answers_wanted),
        "confident_bar": progress_bar(glance.confident, glance.items),
    }


def _dashboard_context(job: Job, *, viewer: Any, totals: JobTotals | None = None) -> dict[str, Any]:
    """The at-a-glance figures, always current; the charts from the cached figures (or pending, on a big job)."""
    context: dict[str, Any] = {
        **_glance_context(job, totals),
        "exports": list_recent_exports(job),
        "instructions_html": render_markdown(job.instructions),
        "instruction_versions": list(
            JobInstructions.objects.filter(job=job).select_related("created_by").order_by("-version")[:10]
        ),
    }
    d = get_job_dashboard(job, hits=context["glance"].progress.hits)
    if d is None:
        return {**context, "dashboard_pending": True}
    hours = [f"{h:%H}h" for h, _ in d.throughput]
    return {
        **context,
        "dashboard": d,
        "top_workers": [
            {**w, "worker": w["display_name"] or worker_id_for(viewer, w["external_id"])} for w in d.top_workers
        ],
        "throughput_chart": bar_chart(
            [n for _, n in d.throughput], hours, title="Assignments submitted per hour", label_every=3
        ),
        "accuracy_chart": bar_chart(
            d.accuracy_histogram,
            [f"{10 * i}%" for i in range(len(d.accuracy_histogram))],
            title="Workers by gold accuracy",
            width=360,
        ),
        "labels_chart": bar_chart(
            [n for _, n in d.label_distribution],
            [label for label, _ in d.label_distribution],
            title="Consensus labels",
            width=360,
        ),
        "confusion_chart": heat_map(d.confusion, d.confusion_labels, title="Consensus vs gold"),
    }


def gold_approval_message(job: Job, result: GoldApprovalResult) -> str:
    left = result.failed_gold + result.without_gold + result.refused
    text = (
        f"{job.name}: approved {result.approved} assignment(s) that passed every gold question "
        f"(paid {result.paid:.2f} {job.currency}); {left} left for review "
        f"({result.failed_gold} failed gold, {result.without_gold} without gold"
    )
    return text + (f", {result.refused} refused by the marketplace)." if result.refused else ").")


class GoldApprovalActionMixin:
    """The console's "approve all pending that pass gold" action (``review_batch.approve_passing_gold``)."""

    def approve_passing_gold(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        actor = Actor.from_user(request.user)
        for job in queryset:
            try:
                result = approve_passing_gold(job=job, actor=actor)
            except ServiceError as exc:
                self.message_user(request, f"{job.name}: {exc}", messages.ERROR)  # type: ignore[attr-defined]
                continue
            level = messages.WARNING if result.refused else messages.SUCCESS
            self.message_user(request, gold_approval_message(job, result), level)  # type: ignore[attr-defined]

    approve_passing_gold.short_description = (  # type: ignore[attr-defined]
        "Approve all submitted work that passed every gold question (the rest waits for review)"
    )
    approve_passing_gold.allowed_permissions = ("change",)  # type: ignore[attr-defined]


# The job page's state buttons: (verb, label, the states it applies to); each runs the job list's action
# named in STATE_ACTIONS (``tasks.admin.JobAdmin``) on its one job.
STATE_ACTIONS = {
    "publish": "publish_selected",
    "pause": "pause_selected",
    "resume": "resume_selected",
    "cancel": "cancel_selected",
}
STATE_BUTTONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("publish", "Publish", (JobState.DRAFT,)),
    ("pause", "Pause", (JobState.PUBLISHED,)),
    ("resume", "Resume", (JobState.PAUSED,)),
    ("cancel", "Cancel job", (JobState.DRAFT, JobState.PUBLISHED, JobState.PAUSED)),
)


class JobActionForm(ActionForm):
    """The job list's action bar, with a nonce drawn when the page is shown: an action that spends money
    (more answers) posted twice from the same page, by a double click or a resubmitted form, runs once."""

    request_key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4, required=False)


def _request_key(request: HttpRequest) -> str | None:
    try:
        return f"admin:{uuid.UUID(request.POST.get('request_key', ''))}"
    except ValueError:  # a page from before the nonce, or a hand-made post: no deduplication
        return None


class JobConsoleMixin(GoldApprovalActionMixin):
    """Mixed into the job admin: the at-a-glance page and the console's actions."""

    action_form = JobActionForm

    def console_context(self, job: Job, *, viewer: Any, totals: JobTotals | None = None) -> dict[str, Any]:
        """The page's at-a-glance figures, charts, instructions and exports (``change_view`` adds them); workers
        are named as ``viewer`` may see them."""
        return _dashboard_context(job, viewer=viewer, totals=totals)

    def state_buttons(self, request: HttpRequest, job: Job) -> list[dict[str, str]]:
        """The state changes the user may make to ``job`` now, as buttons on its page (none without change
        permission)."""
        if not self.has_change_permission(request, job):  # type: ignore[attr-defined]
            return []
        return [
            {"verb": verb, "label": label, "url": reverse("admin:tasks_job_state", args=[job.pk, verb])}
            for verb, label, states in STATE_BUTTONS
            if job.state in states
        ]

    def state_view(self, request: HttpRequest, job_id: int, verb: str) -> HttpResponse:
        """POST from a state button: publish, pause, resume or cancel the job, then back to its page."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        job = get_object_or_404(Job, pk=job_id)
        if not self.has_change_permission(request, job):  # type: ignore[attr-defined]
            raise PermissionDenied
        action = STATE_ACTIONS.get(verb)
        if action is None:
            raise Http404(f"No state change called {verb!r}.")
        # the job list's action for this change, on this one job: the same services and messages
        getattr(self, action)(request, Job.objects.filter(pk=job.pk))
        return HttpResponseRedirect(reverse("admin:tasks_job_change", args=[job.pk]))

    def _each(self, request: HttpRequest, queryset: QuerySet[Job], run: Any, done: str) -> None:
        for job in queryset:
            try:
                result = run(job)
            except ServiceError as exc:
                self.message_user(request, f"{job.name}: {exc}", messages.ERROR)  # type: ignore[attr-defined]
            else:
                self.message_user(request, done.format(job=job, result=result), messages.SUCCESS)  # type: ignore[attr-defined]

    def request_one_more_answer(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        actor, key = Actor.from_user(request.user), _request_key(request)
        self._each(
            request,
            queryset,
            lambda job: request_more_answers(job=job, actor=actor, extra=1, request_key=key),
            "{job.name}: one more answer wanted on {result} Hit(s).",
        )

    request_one_more_answer.short_description = "Extend: one more answer on every Hit"  # type: ignore[attr-defined]
    request_one_more_answer.allowed_permissions = ("change",)  # type: ignore[attr-defined]

    def request_more_where_unsure(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        actor, key = Actor.from_user(request.user), _request_key(request)
        self._each(
            request,
            queryset,
            lambda job: request_more_answers(
                job=job, actor=actor, extra=1, below_confidence=UNSURE_BELOW, request_key=key
            ),
            "{job.name}: one more answer wanted on {result} Hit(s) with an unsure consensus.",
        )

    request_more_where_unsure.short_description = (  # type: ignore[attr-defined]
        f"Request more answers where consensus confidence is below {UNSURE_BELOW}"
    )
    request_more_where_unsure.allowed_permissions = ("change",)  # type: ignore[attr-defined]

    def clone_selected(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        actor = Actor.from_user(request.user)
        for job in queryset:
            clone = clone_job(job=job, actor=actor, created_by=request.user)
            url = reverse("admin:tasks_job_change", args=[clone.pk])
            self.message_user(  # type: ignore[attr-defined]
                request, format_html('{}: cloned as <a href="{}">{}</a>.', job.name, url, clone.name), messages.SUCCESS
            )

    clone_selected.short_description = "Use as a template: clone into a new draft job"  # type: ignore[attr-defined]
    clone_selected.allowed_permissions = ("add",)  # type: ignore[attr-defined]

    def _export(self, request: HttpRequest, queryset: QuerySet[Job], fmt: str) -> None:
        actor = Actor.from_user(request.user)
        self._each(
            request,
            queryset,
            lambda job: request_label_export(job=job, fmt=fmt, actor=actor, created_by=request.user),
            "{job.name}: " + fmt.upper() + " export queued; its progress shows on the job's page.",
        )

    def export_csv(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._export(request, queryset, "csv")

    export_csv.short_description = "Export consensus labels (CSV, in the background)"  # type: ignore[attr-defined]
    export_csv.allowed_permissions = ("change",)  # type: ignore[attr-defined]

    def export_jsonl(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._export(request, queryset, "jsonl")

    export_jsonl.short_description = "Export consensus labels (JSON Lines, in the background)"  # type: ignore[attr-defined]
    export_jsonl.allowed_permissions = ("change",)  # type: ignore[attr-defined]


def download_export(request: HttpRequest, job_id: int, export_id: int) -> HttpResponseBase:
    """A finished background export's file (the admin wraps this view with its login and staff checks)."""
    from django.http import Http404

    from tasks.models import ExportState, LabelExport
    from tasks.services.exports import StoredFileMissing, open_export_file

    if not request.user.has_perm("tasks.view_labelexport"):
        raise Http404
    export = LabelExport.objects.filter(pk=export_id, job_id=job_id, state=ExportState.DONE).first()
    if export is None or not export.file:
        raise Http404
    try:
        handle = open_export_file(export)
    except StoredFileMissing as exc:  # MEDIA_ROOT not shared with the worker, lost, or not restored
        messages.error(request, str(exc))
        return HttpResponseRedirect(reverse("admin:tasks_job_change", args=[job_id]))
    return FileResponse(handle, as_attachment=True, filename=export.file.name.rsplit("/", 1)[-1])
