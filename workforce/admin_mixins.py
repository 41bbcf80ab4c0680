"""Admin helpers shared by every app: read-only admins, and "History" buttons that open the audit trail."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import admin
from django.core.cache import cache
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


FILTER_VALUES_SECONDS = 600
MAX_FILTER_VALUES = 200


def cached_values_filter(field: str, title: str) -> type[admin.SimpleListFilter]:
    """A list filter on the distinct values of ``field``, read at most every ``FILTER_VALUES_SECONDS``.

    Django's default filter for a plain column runs ``SELECT DISTINCT`` over the whole table on every page
    of the list; on the audit trail or the ledger that is millions of rows per click. A value that first
    appears is offered once the cached list expires (it can be typed into the URL at once)."""

    class CachedValuesFilter(admin.SimpleListFilter):
        parameter_name = field

        def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
            model = model_admin.model
            key = f"admin-filter-values:{model._meta.label}:{field}"
            values: list[str] | None = cache.get(key)
            if values is None:
                rows = model.objects.order_by(field).values_list(field, flat=True).distinct()[:MAX_FILTER_VALUES]
                values = [str(v) for v in rows]
                cache.set(key, values, FILTER_VALUES_SECONDS)
            return [(v, v) for v in values]

        def queryset(self, request: HttpRequest, queryset: Any) -> Any:
            value = self.value()
            return queryset.filter(**{field: value}) if value else queryset

    CachedValuesFilter.title = title
    CachedValuesFilter.__name__ = f"CachedValuesFilter_{field}"
    return CachedValuesFilter
