from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from workforce import admin_auth  # noqa: F401  (audited user, group and API token admins)
from workforce.admin_invitations import render_new_links  # also registers the invitation admin
from workforce.admin_mixins import AuditHistoryMixin, IdentitySearchMixin, ReadOnlyAdmin, cached_values_filter
from workforce.audit import Actor, seal_all_audit_events
from workforce.invitations import InvitationError, invite_workers
from workforce.models import AuditEvent, Worker
from workforce.paginator import EstimatedCountPaginator
from workforce.privacy import worker_id_for
from workforce.services import edit_worker

# The user a worker page is rendered for (per request and thread; a ModelAdmin is shared by all requests).
_viewer: ContextVar[Any] = ContextVar("worker_admin_viewer", default=None)


def _rendered(response: HttpResponse) -> HttpResponse:
    """Render a lazy TemplateResponse now, while ``_viewer`` is still set."""
    if isinstance(response, TemplateResponse) and not response.is_rendered:
        response.render()
    return response


@admin.register(Worker)
class WorkerAdmin(IdentitySearchMixin, AuditHistoryMixin, admin.ModelAdmin):
    audit_object_type = "worker"
    list_filter = ("marketplace", "is_blocked")
    search_fields = ("=external_id", "display_name", "user__username")
    identity_search_fields = ("=external_id",)
    list_select_related = ("user",)
    exclude = ("external_id",)
    show_full_result_count = False

    list_display = ("__str__", "marketplace", "marketplace_id", "user", "is_blocked", "created_at")
    readonly_fields = ("marketplace", "marketplace_id", "user", "created_at", "is_blocked", "blocked_reason")
    actions = ["invite_to_pool"]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        token = _viewer.set(request.user)
        try:
            return _rendered(super().changelist_view(request, extra_context))
        finally:
            _viewer.reset(token)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        token = _viewer.set(request.user)
        try:
            return _rendered(super().changeform_view(request, object_id, form_url, extra_context))
        finally:
            _viewer.reset(token)

    @admin.display(description="Marketplace id", ordering="external_id")
    def marketplace_id(self, worker: Worker) -> str:
        """As given for users with the identity permission, else a pseudonym (``workforce.privacy``)."""
        return worker_id_for(_viewer.get(), worker.external_id)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # ``obj`` already holds the form's values; the service reads the stored ones, saves and audits.
        changes = {name: form.cleaned_data[name] for name in form.changed_data}
        edit_worker(worker=obj, actor=Actor.from_user(request.user), changes=changes)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_invite_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("workforce.add_invitation")

    @admin.action(
        description="Invite to the internal pool (imported workers keep their history)", permissions=["invite"]
    )
    def invite_to_pool(self, request: HttpRequest, queryset: QuerySet[Worker]) -> HttpResponse | None:
        try:
            created = invite_workers(workers=queryset, actor=Actor.from_user(request.user))
        except InvitationError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        return render_new_links(request, self.admin_site, created)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    paginator = EstimatedCountPaginator  # the trail only grows: no COUNT(*) over it on every page
    list_display = ("created_at", "actor_label", "action", "object_type", "object_id")
    # Cached value lists and fixed date ranges: no DISTINCT over the whole trail on every page.
    list_filter = (
        cached_values_filter("action", "action"),
        cached_values_filter("object_type", "object type"),
        "actor_kind",
        "created_at",
    )
    # ?object_type=job&object_id=7 (the History button of every audited object) filters to one object.
    search_fields = ("=object_id", "actor_label")

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        seal_all_audit_events()  # show the hot paths' latest events too, not only what beat sealed
        return super().changelist_view(request, extra_context)

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        return lookup in ("object_id", "actor_id") or super().lookup_allowed(lookup, value, request)
