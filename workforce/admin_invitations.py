"""Invitations in the admin: a list with each one's state (never its token), "add" creating N fresh ones,
a revoke action, and the page that shows new links once. Imported by ``workforce.admin``, whose worker admin
invites selected imported workers with ``render_new_links``.

Ops managers need ``workforce.add_invitation`` (create), ``view_invitation`` (list) and
``change_invitation`` (revoke); the change page is read-only for everyone.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from workforce.admin_mixins import AuditHistoryMixin
from workforce.audit import Actor
from workforce.invitations import (
    DEFAULT_VALID_DAYS,
    MAX_FRESH_INVITATIONS,
    MAX_VALID_DAYS,
    STATES,
    InvitationError,
    filter_invitations_by_state,
    get_invitation_state,
    invite_workers,
    revoke_invitations,
)
from workforce.models import Invitation
from workforce.privacy import worker_id_for


def render_new_links(
    request: HttpRequest, admin_site: admin.AdminSite, created: list[tuple[Invitation, str]]
) -> TemplateResponse:
    """The page listing new invitations with their full links: the only time the tokens are shown."""
    rows: list[dict[str, Any]] = [
        {
            "invitation": invitation,
            "worker": invitation.worker,
            "marketplace_id": worker_id_for(request.user, invitation.worker.external_id) if invitation.worker else "",
            "url": request.build_absolute_uri(reverse("join", args=[token])),
        }
        for invitation, token in created
    ]
    context = {
        **admin_site.each_context(request),
        "title": f"{len(rows)} new invitation link{'s' if len(rows) != 1 else ''}",
        "rows": rows,
        "links": "\n".join(str(row["url"]) for row in rows),
        "opts": Invitation._meta,
    }
    response = TemplateResponse(request, "admin/workforce/invitation/links.html", context)
    add_never_cache_headers(response)
    return response


class FreshInvitationsForm(forms.Form):
    count = forms.IntegerField(
        min_value=1, max_value=MAX_FRESH_INVITATIONS, initial=1, help_text="How many links (one per person)."
    )
    valid_days = forms.IntegerField(min_value=1, max_value=MAX_VALID_DAYS, initial=DEFAULT_VALID_DAYS)
    note = forms.CharField(max_length=255, required=False, help_text="For staff only, e.g. who the links are for.")


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(state, state) for state in STATES]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> Any:
        value = self.value()
        return filter_invitations_by_state(queryset, value) if value in STATES else queryset


@admin.register(Invitation)
class InvitationAdmin(AuditHistoryMixin, admin.ModelAdmin):
    audit_object_type = "invitation"
    list_display = (
        "__str__",
        "state",
        "worker",
        "note",
        "created_by",
        "created_at",
        "expires_at",
        "accepted_by",
        "accepted_at",
    )
    list_filter = (StateFilter,)
    list_select_related = ("worker", "created_by", "accepted_by")
    search_fields = ("note",)
    fields = (
        "state",
        "worker",
        "note",
        "created_by",
        "created_at",
        "expires_at",
        "accepted_by",
        "accepted_at",
        "revoked_at",
    )
    readonly_fields = fields
    show_full_result_count = False
    actions = ["revoke_selected"]

    @admin.display(description="State")
    def state(self, invitation: Invitation) -> str:
        return get_invitation_state(invitation)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # written only by the services; the change page is read-only

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: the row is the record of who was let in

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("workforce.change_invitation")

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None) -> Any:
        """Create fresh invitations (for people new to us) and show their links once."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = FreshInvitationsForm(request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                created = invite_workers(
                    actor=Actor.from_user(request.user),
                    count=form.cleaned_data["count"],
                    valid_days=form.cleaned_data["valid_days"],
                    note=form.cleaned_data["note"],
                )
            except InvitationError as exc:
                form.add_error(None, str(exc))
            else:
                return render_new_links(request, self.admin_site, created)
        context = {
            **self.admin_site.each_context(request),
            "title": "New invitations to the worker pool",
            "form": form,
            "opts": self.model._meta,
            "now": timezone.now(),
        }
        return TemplateResponse(request, "admin/workforce/invitation/new.html", context)

    @admin.action(
        description="Revoke the selected invitations (links not used yet stop working)", permissions=["revoke"]
    )
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        revoked = revoke_invitations(
            invitations=queryset.select_related(None).only("pk"),
            actor=Actor.from_user(request.user),
            reason="Revoked in the admin.",
        )
        if revoked:
            self.message_user(request, f"Revoked {revoked} invitation(s).", messages.SUCCESS)
        if skipped := queryset.count() - revoked:
            self.message_user(
                request, f"{skipped} were accepted or revoked already; left as they are.", messages.WARNING
            )
