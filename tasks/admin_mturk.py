"""Admin: the answers posted on the MTurk ExternalQuestion page, kept as claims until MTurk lists them, and
the bonuses paid on MTurk (a flagged one can be sent again).

An unconfirmed claim older than a HIT's lifetime was never submitted to MTurk: someone opened the public page
with ids of their choosing. Ops managers watch them here; they never count as work (``MTurkPageSubmission``).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import HttpRequest

from tasks.models import MTurkBonus, MTurkPageSubmission
from tasks.services.errors import ServiceError
from tasks.services.mturk_review import resend_flagged_bonus
from workforce.admin_mixins import ReadOnlyAdmin
from workforce.audit import Actor
from workforce.marketplaces.base import MarketplaceError


class ConfirmedFilter(admin.EmptyFieldListFilter):
    title = "confirmed by MTurk"


@admin.register(MTurkPageSubmission)
class MTurkPageSubmissionAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "assignment_id", "hit", "worker_id", "confirmed_at")
    list_filter = (("confirmed_at", ConfirmedFilter),)
    list_select_related = ("hit",)
    search_fields = ("=assignment_id",)
    readonly_fields = ("assignment_id", "hit", "worker_id", "answers", "received_at", "confirmed_at")
    ordering = ("-received_at",)


class BonusActionForm(ActionForm):
    note = forms.CharField(
        required=False,
        label="What you checked",
        help_text="Sending a flagged bonus again needs a note (it goes into the audit trail).",
    )


@admin.register(MTurkBonus)
class MTurkBonusAdmin(ReadOnlyAdmin):
    """Bonuses paid on MTurk. A pending one older than a day was flagged: MTurk forgot its token and lists no
    such payment. After checking the worker's bonuses on MTurk, an ops manager sends it again (new token)."""

    list_display = ("created_at", "assignment", "worker", "amount", "state", "sent_at")
    list_filter = ("state",)
    list_select_related = ("assignment", "worker")
    readonly_fields = ("job", "assignment", "worker", "amount", "reason", "idempotency_key", "token", "state")
    ordering = ("-created_at",)
    action_form = BonusActionForm
    actions = ["resend_flagged"]

    @admin.action(description="Send again: MTurk never paid these flagged bonuses", permissions=["resend"])
    def resend_flagged(self, request: HttpRequest, queryset: QuerySet[MTurkBonus]) -> None:
        actor, note = Actor.from_user(request.user), request.POST.get("note", "")
        for bonus in queryset.select_related("assignment__hit", "job", "worker").order_by("pk"):
            try:
                done = resend_flagged_bonus(bonus=bonus, actor=actor, note=note)
            except (ServiceError, MarketplaceError) as exc:
                self.message_user(request, f"{bonus.idempotency_key}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{bonus.idempotency_key}: {done.get_state_display()}.", messages.SUCCESS)

    def has_resend_permission(self, request: HttpRequest) -> bool:
        """The rows stay read-only; whoever may change bonuses may send a flagged one again."""
        return request.user.has_perm("tasks.change_mturkbonus")
