"""Admin for quality review flags, and the flagged-assignments filter. Imported by ``tasks.admin``."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest

from tasks.models import AssignmentFlag
from workforce.admin_mixins import ReadOnlyAdmin


@admin.register(AssignmentFlag)
class AssignmentFlagAdmin(ReadOnlyAdmin):
    """Assignments a quality policy set aside for review (e.g. every gold answer wrong)."""

    list_display = ("assignment", "job", "worker", "reason", "created_at", "resolved_at")
    list_filter = ("job", "reason", ("resolved_at", admin.EmptyFieldListFilter))
    list_select_related = ("assignment", "job", "worker")
    readonly_fields = ("assignment", "job", "worker", "reason", "evidence", "created_at", "resolved_at")


class FlaggedFilter(admin.SimpleListFilter):
    """On the assignment list: only assignments with an open review flag (or none)."""

    title = "review flag"
    parameter_name = "flagged"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Flagged for review"), ("no", "Not flagged")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        flagged = Exists(AssignmentFlag.objects.filter(assignment_id=OuterRef("pk"), resolved_at__isnull=True))
        if self.value() == "yes":
            return queryset.filter(flagged)
        if self.value() == "no":
            return queryset.filter(~flagged)
        return queryset
