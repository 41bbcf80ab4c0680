"""Finance in the admin: the ledger and budgets (read-only), monthly caps, the finance dashboard with
SVG charts and exports, and the job page's budget banner and estimate (review actions: ``admin_review``).

Imported by ``tasks.admin``; everything that writes calls a service.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path, reverse
from django.utils.safestring import mark_safe

from tasks.admin_review import ReviewActionsMixin  # noqa: F401  (re-exported for tasks.admin)
from tasks.models import BudgetAlert, BudgetReservation, CostEntry, Job, MonthlyBudget
from tasks.reports.charts import bar_chart, line_chart
from tasks.reports.estimate import estimate_job_cost
from tasks.reports.exports import EXPORT_FORMATS, export_cost_breakdown, iter_ledger_csv
from tasks.reports.fair_pay import get_fair_pay
from tasks.reports.period import Period, list_job_spend_in_period, list_spend_by_marketplace_in_period
from tasks.reports.selectors import (
    GROUPINGS,
    get_budget_burn_down,
    get_cost_report,
    list_cost_breakdown,
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
from workforce.paginator import EstimatedCountPaginator

FINANCE_PERMISSION = "tasks.view_costentry"


@admin.register(CostEntry)
class CostEntryAdmin(ReadOnlyAdmin):
    paginator = EstimatedCountPaginator  # the ledger grows by rows per assignment: no COUNT(*) on every page
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
            path("dashboard/ledger.csv", view(self.ledger_export_view), name="tasks_finance_ledger_export"),
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
        form = PeriodForm(request.GET or None)
        if form.errors:  # no figures under a period that cannot be read: all-time ones would pass for it
            return self._period_refused(request, "Finance dashboard", form)
        period = form.period()
        jobs = list_job_spend_in_period(period) if period else list_job_costs()
        spend = list_spend_over_time(period=period) if period else list_spend_over_time(days=60)
        alerts = period.entries(BudgetAlert.objects.select_related("job"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Finance dashboard",
            "period_form": form,
            "period": period,
            "jobs": jobs,
            "by_marketplace": [
                (dict(Marketplace.choices).get(row.marketplace, row.marketplace), row)
                for row in (list_spend_by_marketplace_in_period(period) if period else list_spend_by_marketplace())
            ],
            "alerts": alerts[:20],
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
        form = PeriodForm(request.GET or None)
        if form.errors:
            return self._period_refused(request, f"Costs of “{job.name}”", form, job=job, by=by)
        period = form.period()
        report = get_cost_report(job)
        rows = list_cost_breakdown(job, by=by, period=period)
        burn = get_budget_burn_down(job)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Costs of “{job.name}”",
            "job": job,
            "report": report,
            "rows": rows,
            "period_form": form,
            "period": period,
            "period_total": sum((row["total"] for row in rows), Decimal(0)),
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

    def _period_refused(
        self, request: HttpRequest, title: str, form: PeriodForm, *, job: Job | None = None, by: str = ""
    ) -> HttpResponse:
        """The period form and its error alone, answered 400, as the exports answer a period they cannot read."""
        context = {**self.admin_site.each_context(request), "title": title, "period_form": form, "job": job, "by": by}
        return render(request, "admin/tasks/finance/period_refused.html", context, status=400)

    def export_view(self, request: HttpRequest, job_id: int, by: str, fmt: str) -> HttpResponse:
        self._require(request)
        job = get_object_or_404(Job, pk=job_id)
        if by not in GROUPINGS or fmt not in EXPORT_FORMATS:
            return HttpResponse(f"Unknown export {by}.{fmt}.", status=400, content_type="text/plain")
        form = PeriodForm(request.GET or None)
        if form.errors:
            return HttpResponse(form.error_text(), status=400, content_type="text/plain")
        period = form.period()
        content_type = (
            "text/csv" if fmt == "csv" else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
        response = HttpResponse(export_cost_breakdown(job, by=by, fmt=fmt, period=period), content_type=content_type)
        suffix = f"-{period.since or 'start'}-to-{period.until or 'now'}" if period else ""
        response["Content-Disposition"] = f'attachment; filename="job-{job.pk}-costs-by-{by}{suffix}.{fmt}"'
        return response

    def ledger_export_view(self, request: HttpRequest) -> HttpResponseBase:
        """The ledger rows booked in a period, every job, as a streamed CSV (finance's month-end file)."""
        self._require(request)
        form = PeriodForm(request.GET or None)
        if form.errors:
            return HttpResponse(form.error_text(), status=400, content_type="text/plain")
        period = form.period()
        response = StreamingHttpResponse(iter_ledger_csv(period), content_type="text/csv")
        name = f"ledger-{period.since or 'start'}-to-{period.until or 'now'}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class PeriodForm(forms.Form):
    """``since`` / ``until`` (YYYY-MM-DD, whole days, both included) from a report's query string."""

    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since is not None and until is not None and since > until:
            self.add_error("until", "The end of the period comes before its start.")
        return data

    def period(self) -> Period:
        """The period asked for; none (all time) when the form is empty or invalid."""
        if not self.is_bound or not self.is_valid():
            return Period()
        return Period(since=self.cleaned_data.get("since"), until=self.cleaned_data.get("until"))

    def error_text(self) -> str:
        return " ".join(f"{name}: {' '.join(str(e) for e in errors)}" for name, errors in self.errors.items())


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
                month, cap, currency = data.get("month"), data.get("cap"), data.get("currency")
                if cap is not None and cap < 0:
                    self.add_error("cap", "A monthly cap cannot be negative.")
                elif month is not None and cap is not None:
                    month = month.replace(day=1)
                    data["month"] = month
                    self.instance.month = month
                    reserved = (
                        MonthlyBudget.objects.filter(month=month, currency=currency)
                        .values_list("reserved", flat=True)
                        .first()
                    )
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
