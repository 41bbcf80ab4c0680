"""Finance in the admin: the ledger and budgets (read-only), monthly caps, the finance dashboard with
SVG charts and exports, and the job page's budget banner and estimate (review actions: ``admin_review``).

Imported by ``tasks.admin``; everything that writes calls a service.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path, reverse
from django.utils.safestring import mark_safe

from tasks.admin_review import ReviewActionsMixin  # noqa: F401  (re-exported for tasks.admin)
from tasks.models import BudgetAlert, BudgetReservation, CostEntry, Job, MonthlyBudget
from tasks.reports.charts import bar_chart, line_chart
from tasks.reports.estimate import estimate_job_cost
from tasks.reports.exports import EXPORT_FORMATS, export_cost_breakdown
from tasks.reports.fair_pay import get_fair_pay
from tasks.reports.selectors import (
    GROUPINGS,
    get_budget_burn_down,
    get_cost_report,
    list_job_costs,
    list_spend_by_marketplace,
    list_spend_over_time,
)
from tasks.selectors import JobTotals
from tasks.services.budget import set_monthly_cap
from tasks.services.errors import ServiceError
from tasks.services.fair_pay import top_up_fair_pay
from workforce.admin_mixins import ReadOnlyAdmin, cached_values_filter
from workforce.audit import Actor
from workforce.models import Marketplace

FINANCE_PERMISSION = "tasks.view_costentry"


@admin.register(CostEntry)
class CostEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "job", "kind", "status", "amount", "currency", "marketplace", "worker", "reference")
    # Cached value lists and fixed date ranges: no DISTINCT over the whole ledger on every page.
    list_filter = ("kind", "status", "marketplace", cached_values_filter("currency", "currency"), "created_at")
    search_fields = ("=idempotency_key", "=reference")
    list_select_related = ("job", "worker")
    raw_id_fields = ("job", "hit", "assignment", "worker", "reverses")

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("dashboard/", view(self.dashboard_view), name="tasks_finance_dashboard"),
            path("dashboard/job/<int:job_id>/", view(self.job_report_view), name="tasks_finance_job"),
            path(
                "dashboard/job/<int:job_id>/export/<str:by>.<str:fmt>",
                view(self.export_view),
                name="tasks_finance_export",
            ),
            *super().get_urls(),
        ]

    def _require(self, request: HttpRequest) -> None:
        if not request.user.has_perm(FINANCE_PERMISSION):
            raise PermissionDenied

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        self._require(request)
        jobs = list_job_costs()
        spend = list_spend_over_time(days=60)
        context = {
            **self.admin_site.each_context(request),
            "title": "Finance dashboard",
            "jobs": jobs,
            "by_marketplace": [
                (dict(Marketplace.choices).get(row.marketplace, row.marketplace), row)
                for row in list_spend_by_marketplace()
            ],
            "alerts": BudgetAlert.objects.select_related("job")[:20],
            # One chart per currency the ledger was booked in: amounts in different currencies never add up.
            "spend_charts": [
                mark_safe(line_chart([(d.isoformat(), v) for d, v in points], title=f"Spend per day ({currency})"))
                for currency, points in sorted(spend.items())
            ]
            or [mark_safe(line_chart([], title="Spend per day"))],
            "per_label_chart": mark_safe(
                bar_chart(
                    [(j.name, j.cost_per_label) for j in jobs if j.cost_per_label is not None][:20],
                    title="Cost per consensus label by job",
                )
            ),
        }
        return render(request, "admin/tasks/finance/dashboard.html", context)

    def job_report_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        self._require(request)
        job = get_object_or_404(Job, pk=job_id)
        by = request.GET.get("by", "worker")
        if by not in GROUPINGS:
            by = "worker"
        report = get_cost_report(job, by=by)
        burn = get_budget_burn_down(job)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Costs of “{job.name}”",
            "job": job,
            "report": report,
            "fair_pay": get_fair_pay(job),
            "by": by,
            "groupings": GROUPINGS,
            "formats": EXPORT_FORMATS,
            "burn_chart": mark_safe(
                line_chart(
                    [(d.isoformat(), v) for d, v in burn], title="Budget left (cap minus spend)", limit=job.budget_cap
                )
            ),
        }
        return render(request, "admin/tasks/finance/job.html", context)

    def export_view(self, request: HttpRequest, job_id: int, by: str, fmt: str) -> HttpResponse:
        self._require(request)
        job = get_object_or_404(Job, pk=job_id)
        if by not in GROUPINGS or fmt not in EXPORT_FORMATS:
            return HttpResponse(f"Unknown export {by}.{fmt}.", status=400, content_type="text/plain")
        content_type = (
            "text/csv" if fmt == "csv" else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        response = HttpResponse(export_cost_breakdown(job, by=by, fmt=fmt), content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="job-{job.pk}-costs-by-{by}.{fmt}"'
        return response


@admin.register(BudgetReservation)
class BudgetReservationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "job", "amount", "month", "reason", "key")
    list_filter = ("month",)
    list_select_related = ("job",)
    raw_id_fields = ("job",)


@admin.register(BudgetAlert)
class BudgetAlertAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "job", "threshold", "spent", "cap")
    list_select_related = ("job",)


class MonthlyBudgetForm(forms.ModelForm):
    class Meta:
        model = MonthlyBudget
        fields = ["month", "cap", "currency"]


@admin.register(MonthlyBudget)
class MonthlyBudgetAdmin(admin.ModelAdmin):
    form = MonthlyBudgetForm
    list_display = ("month", "cap", "reserved", "currency")
    readonly_fields = ("reserved",)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: MonthlyBudget, form: Any, change: bool) -> None:
        saved = set_monthly_cap(
            month=obj.month, cap=obj.cap, currency=obj.currency, actor=Actor.from_user(request.user)
        )
        obj.pk, obj.reserved = saved.pk, saved.reserved

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change, **kwargs)

        class Checked(form):  # type: ignore[valid-type,misc]
            def clean(self) -> dict[str, Any]:
                data = super().clean()
                month, cap = data.get("month"), data.get("cap")
                if cap is not None and cap < 0:
                    self.add_error("cap", "A monthly cap cannot be negative.")
                elif month is not None and cap is not None:
                    month = month.replace(day=1)
                    data["month"] = month
                    self.instance.month = month
                    reserved = MonthlyBudget.objects.filter(month=month).values_list("reserved", flat=True).first()
                    if reserved is not None and cap < reserved:
                        self.add_error("cap", f"{reserved} is already reserved this month; the cap cannot be lower.")
                return data

        return Checked


class JobFinanceMixin:
    """The job page's budget banner and pre-flight estimate (the fair-pay warning comes with the cached job
    figures, ``tasks.dashboard``), and a fair-pay action."""

    def finance_context(self, job: Job, *, totals: JobTotals | None = None) -> dict[str, Any]:
        return {
            "estimate": estimate_job_cost(job, totals=totals),
            "budget_alerts": list(BudgetAlert.objects.filter(job=job).order_by("-threshold")[:1]),
            "finance_url": reverse("admin:tasks_finance_job", args=[job.pk]),
        }

    @admin.action(description="Top up underpaid workers to the fair-pay minimum (bonuses)", permissions=["change"])
    def top_up_fair_pay_selected(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        for job in queryset:
            try:
                paid = top_up_fair_pay(job=job, actor=Actor.from_user(request.user))
            except ServiceError as exc:
                self.message_user(request, f"{job.name}: {exc}", messages.ERROR)  # type: ignore[attr-defined]
            else:
                self.message_user(request, f"{job.name}: {paid} {job.currency} in bonuses.", messages.SUCCESS)  # type: ignore[attr-defined]
