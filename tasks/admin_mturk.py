"""Admin: the answers posted on the MTurk ExternalQuestion page, kept as claims until MTurk lists them.

An unconfirmed claim older than a HIT's lifetime was never submitted to MTurk: someone opened the public page
with ids of their choosing. Ops managers watch them here; they never count as work (``MTurkPageSubmission``).
"""

from __future__ import annotations

from django.contrib import admin

from tasks.models import MTurkPageSubmission
from workforce.admin_mixins import ReadOnlyAdmin


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
