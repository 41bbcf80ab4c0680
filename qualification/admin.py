"""Admin: tests with their questions inline (read-only once attempted: make a new version instead),
attempts (read-only) and grants (revoke action)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from qualification.errors import QualificationError
from qualification.models import Attempt, Grant, QualificationTest, Question
from qualification.services import (
    EDITABLE_FIELD_ORDER,
    create_new_version,
    lock_test_snapshot,
    record_test_saved,
)
from qualification.services_bulk import revoke_grants
from qualification.specs import OptionSpec, QuestionSpec, unreadable_numbers, validate_question_specs
from workforce.admin_fields import LabelListField, StorableJSONField
from workforce.admin_mixins import IdentitySearchMixin, ReadOnlyAdmin
from workforce.audit import Actor


def _frozen(obj: QualificationTest | None) -> bool:
    """Attempted or superseded versions are history: they are not edited in place. Asked by every permission
    check of the page and its inline, so the answer is kept on the instance (one per request)."""
    if obj is None or obj.pk is None:
        return False
    frozen: bool | None = getattr(obj, "_admin_frozen", None)
    if frozen is None:
        frozen = not obj.is_current or obj.attempts.exists()
        obj._admin_frozen = frozen  # type: ignore[attr-defined]
    return frozen


ACCEPTED_HELP = 'Accepted answers must be a JSON list, e.g. ["pos"] (a numeric question: [42.5]).'


class QuestionForm(forms.ModelForm):
    class Meta:
        model = Question
        fields = [
            "position",
            "identifier",
            "title",
            "prompt",
            "payload",
            "answer_type",
            "options",
            "accepted",
            "points",
            "tolerance",
        ]
        # JSON nested too deeply, NaN or 1e999 is a form error, not a 500
        field_classes = {"payload": StorableJSONField, "options": StorableJSONField, "accepted": StorableJSONField}

    def clean_accepted(self) -> Any:
        accepted = self.cleaned_data.get("accepted")
        if accepted is not None and not isinstance(accepted, list):
            raise forms.ValidationError(ACCEPTED_HELP)
        return accepted

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if "accepted" in self.errors:
            return data  # the field's own error says what is wrong; a spec without it would only add noise
        options = data.get("options") or []
        try:
            spec = QuestionSpec(
                identifier=str(data.get("identifier") or ""),
                prompt=str(data.get("prompt") or ""),
                answer_type=str(data.get("answer_type") or ""),
                options=tuple(OptionSpec(value=str(o["value"]), label=str(o["label"])) for o in options),
                accepted=tuple(data.get("accepted") or ()),
                points=float(data.get("points") or 0),
                tolerance=float(data.get("tolerance") or 0),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise forms.ValidationError('Options must be a list like [{"value": "a", "label": "A"}].') from exc
        errors = validate_question_specs([spec])
        if not_numbers := unreadable_numbers(spec):
            errors.append(f"Question {spec.identifier!r} accepts {not_numbers!r}, which are not finite numbers.")
        if errors:
            raise forms.ValidationError(errors)
        return data


class QuestionInline(admin.StackedInline):
    model = Question
    form = QuestionForm
    extra = 0
    ordering = ["position"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not _frozen(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not _frozen(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not _frozen(obj) and super().has_delete_permission(request, obj)


class QualificationTestForm(forms.ModelForm):
    labels = LabelListField(
        required=False,
        help_text="The labels offered when a question has none: one per line, or separated by commas.",
    )

    class Meta:
        model = QualificationTest
        # the slug names the test's family: set once, shown after the name
        fields = ["name", "slug", *(f for f in EDITABLE_FIELD_ORDER if f != "name")]

    def clean_slug(self) -> str:
        """A slug names one test family: a new test cannot take the slug of an existing one (the database
        would refuse a second current version of it)."""
        slug: str = self.cleaned_data["slug"]
        if _slug_taken(slug, instance=self.instance):
            raise forms.ValidationError(
                f"A test with the slug “{slug}” already exists. To change that test, edit its current version "
                "(once attempted, select it in the list and run “Make a new version to edit”); "
                "for a different test, choose another slug."
            )
        return slug


def _slug_taken(slug: str, *, instance: Model) -> bool:
    return QualificationTest.objects.filter(slug=slug).exclude(pk=instance.pk).exists()


@admin.register(QualificationTest)
class QualificationTestAdmin(admin.ModelAdmin):
    form = QualificationTestForm
    list_display = ["name", "version", "is_current", "is_active", "task_kind", "pass_score", "max_attempts"]
    list_filter = ["is_active", "is_current", "task_kind"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["version", "is_current", "previous", "root"]
    inlines = [QuestionInline]
    actions = ["make_new_version"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not _frozen(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # attempts and grants point at test versions; retire a test with is_active instead

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "slug"] if obj is not None and obj.pk else fields

    def get_prepopulated_fields(self, request: HttpRequest, obj: Any = None) -> dict[str, Any]:
        # the slug is read-only once saved, and a read-only field cannot be filled in from the name
        return {} if obj is not None and obj.pk else super().get_prepopulated_fields(request, obj)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # Validating the form already wrote its values into ``obj``: the "before" comes from the database,
        # read (and the row locked) now, before the form's rows are saved.
        obj._audit_before = lock_test_snapshot(test_id=obj.pk) if change else None
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        before = getattr(form.instance, "_audit_before", None)
        record_test_saved(test=form.instance, actor=Actor.from_user(request.user), created=not change, before=before)

    @admin.action(description="Make a new version to edit (attempted tests are frozen)", permissions=["add"])
    def make_new_version(self, request: HttpRequest, queryset: QuerySet[QualificationTest]) -> None:
        for test in queryset:
            try:
                new = create_new_version(test=test, actor=Actor.from_user(request.user))
            except QualificationError as exc:
                self.message_user(request, f"{test}: {exc}", messages.ERROR)
                continue
            url = reverse("admin:qualification_qualificationtest_change", args=[new.pk])
            self.message_user(request, format_html('Created <a href="{}">{}</a>.', url, new), messages.SUCCESS)


@admin.register(Attempt)
class AttemptAdmin(IdentitySearchMixin, ReadOnlyAdmin):
    list_display = ["uuid", "worker", "test", "number", "state", "score", "passed", "started_at", "submitted_at"]
    list_filter = ["state", "passed"]
    list_select_related = ["worker", "test"]
    search_fields = ["worker__external_id", "worker__display_name", "test__name"]
    identity_search_fields = ("worker__external_id",)


@admin.register(Grant)
class GrantAdmin(IdentitySearchMixin, ReadOnlyAdmin):
    list_display = ["worker", "test", "version", "score", "granted_at", "revoked_at"]
    list_filter = ["revoked_at"]
    list_select_related = ["worker", "test"]
    search_fields = ["worker__external_id", "worker__display_name", "test__name"]
    identity_search_fields = ("worker__external_id",)
    actions = ["revoke"]

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("qualification.change_grant")

    @admin.action(description="Revoke the selected qualifications", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[Grant]) -> None:
        # One set-based call: grants someone else revoked first are skipped, not counted.
        revoked = revoke_grants(grants=queryset, actor=Actor.from_user(request.user), reason="Revoked in the admin.")
        self.message_user(request, f"Revoked {len(revoked)} qualification(s).", messages.SUCCESS)
