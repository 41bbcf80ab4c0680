"""Admin for quality review flags (with their filter) and consensus labels. Imported by ``tasks.admin``."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from tasks.admin_filters import RecentJobFilter
from tasks.models import AssignmentFlag, ConsensusLabel, Job
from tasks.services.errors import ServiceError
from tasks.services.gold import promote_consensus_to_gold
from workforce.admin_mixins import ReadOnlyAdmin, cached_values_filter
from workforce.audit import Actor
from workforce.paginator import EstimatedCountPaginator


@admin.register(AssignmentFlag)
class AssignmentFlagAdmin(ReadOnlyAdmin):
    """Assignments a quality policy set aside for review (e.g. every gold answer wrong)."""

    list_display = ("assignment", "job", "worker", "reason", "created_at", "resolved_at")
    list_filter = (RecentJobFilter, "reason", ("resolved_at", admin.EmptyFieldListFilter))
    list_select_related = ("assignment", "job", "worker")
    readonly_fields = ("assignment", "job", "worker", "reason", "evidence", "created_at", "resolved_at")


class FlaggedFilter(admin.SimpleListFilter):
    """On the assignment list: only assignments with an open review flag (or none)."""

    title = "review flag"
    parameter_name = "flagged"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Flagged for review"), ("no", "Not flagged")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        # The open flags are few next to the assignments: read their ids once (an uncorrelated subquery)
        # rather than probing the flags once per assignment row.
        flagged = AssignmentFlag.objects.filter(resolved_at__isnull=True).values("assignment_id")
        if self.value() == "yes":
            return queryset.filter(pk__in=flagged)
        if self.value() == "no":
            return queryset.exclude(pk__in=flagged)
        return queryset


@admin.register(ConsensusLabel)
class ConsensusLabelAdmin(ReadOnlyAdmin):
    paginator = EstimatedCountPaginator  # one label per item: no COUNT(*) on every page
    list_display = ("item", "job", "label", "confidence_shown", "method", "answers_count")
    list_filter = (RecentJobFilter, cached_values_filter("method", "method"))
    list_select_related = ("item", "job")
    actions = ["promote_to_gold"]

    @admin.display(description="label", ordering="value")
    def label(self, obj: ConsensusLabel) -> str:
        """A class label as it reads (not as JSON); several labels joined; anything else (a drawing) as JSON."""
        value = obj.value
        if isinstance(value, str):
            return value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return ", ".join(value) or "(none)"
        return json.dumps(value)[:120]

    @admin.display(description="confidence", ordering="confidence")
    def confidence_shown(self, obj: ConsensusLabel) -> str:
        return f"{obj.confidence:.3f}"

    def has_promote_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tasks.change_item")

    @admin.action(description="Promote to gold questions (consensus confidence 0.9 or more)", permissions=["promote"])
    def promote_to_gold(self, request: HttpRequest, queryset: QuerySet[ConsensusLabel]) -> None:
        by_job: dict[int, list[int]] = {}
        for job_id, item_id in queryset.values_list("job_id", "item_id"):
            by_job.setdefault(job_id, []).append(item_id)
        for job in Job.objects.filter(pk__in=by_job):
            try:
                count = promote_consensus_to_gold(job=job, item_ids=by_job[job.pk], actor=Actor.from_user(request.user))
            except ServiceError as exc:
                self.message_user(request, f"{job.name}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{job.name}: {count} item(s) are now gold questions.", messages.SUCCESS)
