"""The job admin's forms: a job's settings (checked by the same rules as the services) and the item upload."""

from __future__ import annotations

import copy
from typing import Any

from django import forms

from qualification.selectors import validate_job_requirements
from tasks.console.job_admin import InstructionsConfirmMixin
from tasks.models import (
    Job,
    JobState,
    PayMode,
)
from tasks.services.imports import FORMATS
from tasks.services.jobs import (
    ADAPTIVE_FORM_FIELDS,
    INTERNAL_ONLY_REFUSAL,
    PRICE_FIELDS,
    check_adaptive_settings,
    check_budget_and_prelabels,
    check_durations,
    check_marketplace_currency,
    check_running_job_change,
)
from tasks.services.task_templates import template_problems
from workforce.admin_fields import LabelListField, StorableJSONField
from workforce.models import Marketplace


class ItemImportForm(forms.Form):
    file = forms.FileField(help_text="CSV with an 'external_id' column, or JSON Lines with an 'external_id' field.")
    format = forms.ChoiceField(choices=[("", "From the file name"), *[(f, f.upper()) for f in FORMATS]], required=False)


CONSENSUS_METHODS = [
    ("mv", "Majority vote"),
    ("wmv", "Weighted majority vote"),
    ("wawa", "Wawa (agreement-weighted vote)"),
    ("ds", "Dawid-Skene (per-worker confusion matrices)"),
    ("ods", "One-coin Dawid-Skene"),
    ("glad", "GLAD (worker skill and item difficulty)"),
    ("mace", "MACE (spammer-aware)"),
]


class JobForm(InstructionsConfirmMixin, forms.ModelForm):
    labels = LabelListField(
        help_text="The label set in display order (shortcut keys 1-9): one per line, or separated by commas."
    )
    consensus_method = forms.ChoiceField(choices=CONSENSUS_METHODS, initial="mv")
    pay_mode = forms.ChoiceField(choices=PayMode.choices, initial=PayMode.PIECE, required=False)

    class Meta:
        model = Job
        fields = [
            "name",
            "description",
            "instructions",
            "task_kind",
            "labels",
            "items_per_hit",
            "redundancy",
            "adaptive_min_answers",
            "adaptive_max_answers",
            "adaptive_target",
            "consensus_method",
            "reward",
            "currency",
            "assignment_duration",
            "marketplace",
            "internal_only",
            "training_mode",
            "prelabel_model",
            "trusted_test",
            "trusted_min_accuracy",
            "gold_rate",
            "block_below_accuracy",
            "block_after_gold",
            "gold_boost_rate",
            "gold_boost_until",
            "gold_miss_action",
            "requirements",
            "task_template",
            "answer_field",
            "pay_mode",
            "hourly_rate",
            "auto_approve_after",
            "budget_cap",
        ]
        widgets = {"name": forms.TextInput(attrs={"class": "vTextField", "style": "width: 40em; max-width: 100%"})}
        field_classes = {"requirements": StorableJSONField}  # JSON nested too deeply is a form error, not a 500

    def clean_requirements(self) -> list[dict[str, object]]:
        requirements = self.cleaned_data["requirements"] or []
        errors = validate_job_requirements(requirements)
        if errors:
            raise forms.ValidationError(errors)
        return requirements

    def clean_pay_mode(self) -> str:
        return self.cleaned_data.get("pay_mode") or PayMode.PIECE

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("internal_only") and data.get("marketplace", Marketplace.INTERNAL) != Marketplace.INTERNAL:
            self.add_error("internal_only", INTERNAL_ONLY_REFUSAL)
        for problem in template_problems(
            task_template=data.get("task_template") or "",
            answer_field=data.get("answer_field") or "",
            items_per_hit=data.get("items_per_hit", self.instance.items_per_hit) or 1,
        ):
            self.add_error("task_template", problem)
        probe = Job(**{f: data.get(f, getattr(self.instance, f)) for f in ADAPTIVE_FORM_FIELDS})
        for field, problem in check_adaptive_settings(probe).items():
            self.add_error(field, problem)
        if data.get("pay_mode") == "hourly" and data.get("hourly_rate") is None:
            self.add_error("hourly_rate", "Hourly pay needs an hourly rate.")
        problems = (
            check_durations(
                assignment_duration=data.get("assignment_duration"), auto_approve_after=data.get("auto_approve_after")
            )
            | (
                check_marketplace_currency(
                    marketplace=data.get("marketplace", self.instance.marketplace),
                    currency=data.get("currency", self.instance.currency),
                )
                if self.instance.pk is None or self.instance.state == JobState.DRAFT
                else {}
            )
            | check_budget_and_prelabels(
                job_id=self.instance.pk,
                budget_cap=data.get("budget_cap", self.instance.budget_cap),
                prelabel_model=data.get("prelabel_model", self.instance.prelabel_model) or "",
            )
        )
        if self.instance.pk is not None:  # the instance holds the stored values until the form is saved
            probe = copy.copy(self.instance)
            for name, value in data.items():
                if name in PRICE_FIELDS:
                    setattr(probe, name, value)
            problems |= check_running_job_change(stored=self.instance, job=probe)
        for field, problem in problems.items():
            if field in self.fields and not self.has_error(field):
                self.add_error(field, problem)
        return data

    def clean_labels(self) -> list[str]:
        names: list[str] = self.cleaned_data["labels"]  # stripped names (``LabelListField``)
        if len(set(names)) != len(names):
            raise forms.ValidationError("Each label must appear once.")
        if len(names) < 2:
            raise forms.ValidationError("A job needs at least two labels.")
        return names
