from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from workforce.models import AuditEvent, Worker


@admin.register(Worker)
class WorkerAdmin(admin.ModelAdmin):
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
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor_label", "action", "object_type", "object_id")
    list_filter = ("action", "object_type", "actor_kind")
    search_fields = ("=object_id", "actor_label")
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
