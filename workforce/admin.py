from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from workforce.admin_mixins import AuditHistoryMixin, ReadOnlyAdmin
from workforce.audit import seal_all_audit_events
from workforce.models import AuditEvent, Worker


@admin.register(Worker)
class WorkerAdmin(AuditHistoryMixin, admin.ModelAdmin):
    audit_object_type = "worker"
    list_display = ("__str__", "marketplace", "external_id", "user", "is_blocked", "created_at")
    list_filter = ("marketplace", "is_blocked")
    search_fields = ("=external_id", "display_name", "user__username")
    list_select_related = ("user",)
    readonly_fields = ("marketplace", "external_id", "user", "created_at", "is_blocked", "blocked_reason")
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor_label", "action", "object_type", "object_id")
    list_filter = ("action", "object_type", "actor_kind")
    # ?object_type=job&object_id=7 (the History button of every audited object) filters to one object.
    search_fields = ("=object_id", "actor_label")
    date_hierarchy = "created_at"

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        seal_all_audit_events()  # show the hot paths' latest events too, not only what beat sealed
        return super().changelist_view(request, extra_context)

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        return lookup in ("object_id", "actor_id") or super().lookup_allowed(lookup, value, request)
