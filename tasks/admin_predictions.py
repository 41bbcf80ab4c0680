"""Admin for model predictions: the list, an import form, and a job's active-learning page with its
export of the items a model should be retrained on."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path, reverse

from tasks.admin_uploads import run_upload
from tasks.models import Job, Prediction
from tasks.selectors_predictions import (
    count_disagreements_by_day,
    count_gold_without_prediction,
    iter_retraining_csv,
    list_active_learning,
    list_model_names,
    list_prelabel_acceptance,
)
from tasks.services.predictions import import_predictions
from workforce.admin_mixins import ReadOnlyAdmin, cached_values_filter
from workforce.audit import Actor
from workforce.paginator import EstimatedCountPaginator


class PredictionImportForm(forms.Form):
    model_name = forms.CharField(max_length=100, help_text="The model's name and version, e.g. resnet50-2026-11.")
    file = forms.FileField(help_text="CSV with external_id,label,score (or value for drawings), or JSON Lines.")


@admin.register(Prediction)
class PredictionAdmin(ReadOnlyAdmin):
    paginator = EstimatedCountPaginator  # predictions per item and model: no COUNT(*) on every page
    list_display = ("item", "job", "model_name", "value", "score", "created_at")
    list_filter = (cached_values_filter("model_name", "model"),)
    list_select_related = ("item", "job")
    search_fields = ("item__external_id", "model_name")
    show_full_result_count = False

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view
        return [
            path("job/<int:job_id>/import/", view(self.import_view), name="tasks_prediction_import"),
            path("job/<int:job_id>/active-learning/", view(self.learning_view), name="tasks_prediction_learning"),
            path("job/<int:job_id>/retraining.csv", view(self.retraining_csv), name="tasks_prediction_retraining"),
            *super().get_urls(),
        ]

    def import_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        if not request.user.has_perm("tasks.add_prediction"):
            raise PermissionDenied("You do not have permission to import predictions.")
        job = get_object_or_404(Job, pk=job_id)
        form = PredictionImportForm(request.POST or None, request.FILES or None)
        row_errors: list[Any] = []
        if request.method == "POST" and form.is_valid():
            result, row_errors = run_upload(
                form,
                lambda upload, data: import_predictions(
                    job=job,
                    stream=upload,
                    filename=upload.name,
                    model_name=data["model_name"],
                    actor=Actor.from_user(request.user),
                ),
            )
            if result is not None:
                messages.success(
                    request,
                    f"Imported {result.created} new and {result.updated} updated prediction(s) of "
                    f"{result.model_name}; {result.hits_reprioritised} Hit(s) now serve the least certain items first.",
                )
                return HttpResponseRedirect(reverse("admin:tasks_prediction_learning", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": Job._meta,
            "job": job,
            "form": form,
            "row_errors": row_errors,
            "title": f"Import model predictions into “{job.name}”",
        }
        return render(request, "admin/tasks/prediction/import.html", context)

    def learning_view(self, request: HttpRequest, job_id: int) -> HttpResponse:
        if not request.user.has_perm("tasks.view_prediction"):
            raise PermissionDenied("You do not have permission to see this job's predictions.")
        job = get_object_or_404(Job, pk=job_id)
        models = list_model_names(job)
        model_name = request.GET.get("model") or job.prelabel_model or (models[0] if models else "")
        order = "disagreement" if request.GET.get("order") == "disagreement" else "uncertainty"
        context = {
            **self.admin_site.each_context(request),
            "opts": Job._meta,
            "job": job,
            "models": models,
            "model_name": model_name,
            "order": order,
            "rows": list_active_learning(job, model_name=model_name, order=order) if model_name else [],
            "by_day": count_disagreements_by_day(job, model_name=model_name) if model_name else [],
            "acceptance": list_prelabel_acceptance(job),
            "gold_without_prediction": count_gold_without_prediction(job),
            "title": f"Active learning for “{job.name}”",
        }
        return render(request, "admin/tasks/prediction/active_learning.html", context)

    def retraining_csv(self, request: HttpRequest, job_id: int) -> HttpResponseBase:
        if not request.user.has_perm("tasks.view_prediction"):
            raise PermissionDenied("You do not have permission to export this job's retraining items.")
        job = get_object_or_404(Job, pk=job_id)
        model_name = request.GET.get("model", "")
        response = StreamingHttpResponse(iter_retraining_csv(job, model_name=model_name), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="job-{job.pk}-retrain-{model_name or "model"}.csv"'
        return response
