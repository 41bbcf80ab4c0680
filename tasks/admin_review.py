"""Review actions on the assignment admin: approve, reject with the reviewer's feedback, pay a bonus.

Every action parses its form and calls one service: ``tasks.services.review_batch`` for reviews,
``tasks.services.bonuses_bulk.pay_bonuses`` for bonuses (both set-based for the internal pool; MTurk work
goes through its crash-safe services from there, one call per assignment).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from tasks.models import Assignment, Job
from tasks.services.bonuses_bulk import BonusRequest, pay_bonuses
from tasks.services.review_batch import ReviewResult, approve_assignments, reject_assignments
from workforce.audit import Actor

MAX_FEEDBACK = 1024  # what MTurk shows a worker at most


class RejectForm(forms.Form):
    feedback = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        max_length=MAX_FEEDBACK,
        help_text="Shown to the worker (on MTurk in their status page): say what was wrong.",
    )

    def clean_feedback(self) -> str:
        text = str(self.cleaned_data["feedback"]).strip()
        if not text:
            raise forms.ValidationError("Tell the worker why the work is rejected.")
        return text


class BonusForm(forms.Form):
    amount = forms.DecimalField(min_value=Decimal("0.01"), max_digits=8, decimal_places=2, help_text="Per assignment.")
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 80}), max_length=MAX_FEEDBACK)
    # Generated when the form is first shown: submitting the same form twice pays each bonus once.
    nonce = forms.UUIDField(widget=forms.HiddenInput)


class ReviewActionsMixin:
    """Approve / reject / bonus actions for the read-only assignment admin (reviewers hold change_assignment)."""

    actions: Any = ["approve_selected", "reject_selected", "bonus_selected"]

    def has_review_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tasks.change_assignment")

    def _report(self, request: HttpRequest, done: int, verb: str, errors: list[str]) -> None:
        for error in errors:
            self.message_user(request, error, messages.ERROR)  # type: ignore[attr-defined]
        if done:
            self.message_user(request, f"{verb} {done} assignment(s).", messages.SUCCESS)  # type: ignore[attr-defined]

    def _form_page(
        self, request: HttpRequest, queryset: QuerySet[Assignment], form: forms.Form, action: str, title: str
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "title": title,
            "form": form,
            "action": action,
            "assignments": queryset,
            "opts": self.model._meta,  # type: ignore[attr-defined]
            "checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/tasks/assignment/review_form.html", context)

    def _review_by_job(
        self, request: HttpRequest, queryset: QuerySet[Assignment], review: Callable[[Job, list[int]], ReviewResult]
    ) -> tuple[int, list[str]]:
        """Run ``review`` once per job on the selected rows of that job (a set-based review, not a
        transaction per row); returns how many it reviewed and one sentence per row it left."""
        by_job: dict[int, list[int]] = defaultdict(list)
        for job_id, pk in queryset.order_by().values_list("job_id", "pk"):
            by_job[job_id].append(pk)
        jobs = Job.objects.in_bulk(list(by_job))
        done = 0
        errors: list[str] = []
        for job_id, ids in sorted(by_job.items()):
            result = review(jobs[job_id], ids)
            done += result.approved + result.rejected
            errors += result.refusals
        if skipped := sum(len(ids) for ids in by_job.values()) - done - len(errors):
            errors.append(
                f"{skipped} of the selected assignments were not waiting for review (already reviewed, returned "
                "or expired) and were left as they are."
            )
        return done, errors

    @admin.action(description="Approve selected submitted assignments (and pay them)", permissions=["review"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[Assignment]) -> None:
        actor = Actor.from_user(request.user)
        done, errors = self._review_by_job(
            request, queryset, lambda job, ids: approve_assignments(job=job, actor=actor, assignment_ids=ids)
        )
        self._report(request, done, "Approved", errors)

    @admin.action(description="Reject selected submitted assignments (unpaid, with feedback)", permissions=["review"])
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[Assignment]) -> HttpResponse | None:
        form = RejectForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return self._form_page(request, queryset, form, "reject_selected", "Reject with feedback")
        actor, feedback = Actor.from_user(request.user), form.cleaned_data["feedback"]
        done, errors = self._review_by_job(
            request,
            queryset,
            lambda job, ids: reject_assignments(job=job, actor=actor, assignment_ids=ids, feedback=feedback),
        )
        self._report(request, done, "Rejected", errors)
        return None

    @admin.action(description="Pay a bonus on the selected assignments", permissions=["review"])
    def bonus_selected(self, request: HttpRequest, queryset: QuerySet[Assignment]) -> HttpResponse | None:
        form = BonusForm(request.POST if "apply" in request.POST else None, initial={"nonce": uuid.uuid4()})
        if not form.is_valid():
            return self._form_page(request, queryset, form, "bonus_selected", "Pay a bonus")
        data = form.cleaned_data
        assignments = list(queryset.select_related("job", "worker"))
        # One set-based call for the selection (internal-pool bonuses in bulk, MTurk's one SendBonus each).
        outcomes = pay_bonuses(
            bonuses=[
                BonusRequest(
                    job=assignment.job,
                    worker=assignment.worker,
                    assignment=assignment,
                    amount=data["amount"],
                    reason=data["reason"],
                    key=f"admin:{data['nonce']}:{assignment.pk}",
                )
                for assignment in assignments
            ],
            actor=Actor.from_user(request.user),
        )
        errors = [
            f"{assignment}: {outcome.error}"
            for assignment, outcome in zip(assignments, outcomes, strict=True)
            if outcome.error is not None
        ]
        self._report(request, len(assignments) - len(errors), f"Paid a {data['amount']} bonus on", errors)
        return None
