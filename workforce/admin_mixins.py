"""Admin helpers shared by every app: read-only admins, and "History" buttons that open the audit trail."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from workforce.privacy import can_see_worker_ids


class AuditHistoryMixin:
    """Send the change page's "History" button to the audit events of this object.

    ``audit_object_type`` is the ``object_type`` the services write for the model. Users who may not
    view audit events keep Django's own history page.
    """

    audit_object_type: str = ""

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_or_change_permission(request):  # type: ignore[attr-defined]
            raise PermissionDenied  # the audit list must not open a door the object's own page keeps shut
        if self.audit_object_type and request.user.has_perm("workforce.view_auditevent"):
            query = urlencode({"object_type": self.audit_object_type, "object_id": object_id})
            return HttpResponseRedirect(f"{reverse('admin:workforce_auditevent_changelist')}?{query}")
        return super().history_view(request, object_id, extra_context)  # type: ignore[misc]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written only by services: viewable, never added, edited or deleted here."""

    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class IdentitySearchMixin:
    """Searching by a worker's marketplace id only for users who may see those ids: for the others a search
    by id would confirm an id they were shown masked. ``identity_search_fields`` are the search fields that
    match marketplace ids."""

    identity_search_fields: tuple[str, ...] = ()

    def get_search_fields(self, request: HttpRequest) -> Any:
        fields = super().get_search_fields(request)  # type: ignore[misc]
        if can_see_worker_ids(request.user):
            return fields
        return tuple(f for f in fields if f not in self.identity_search_fields)
