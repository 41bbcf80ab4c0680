from __future__ import annotations

from django.urls import path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from tasks.api import datasets, items, jobs, labels, predictions, review, views
from tasks.api.converters import BoundedIntConverter

register_converter(BoundedIntConverter, "id")

router = SimpleRouter()
router.register("jobs", jobs.JobViewSet, basename="api-job")

J = "jobs/<id:job_id>/"
urlpatterns = [
    path("", views.ApiRootView.as_view(), name="api-root"),
    path(f"{J}items/import/", views.ItemImportView.as_view(), name="api-item-import"),
    path(f"{J}progress/", views.JobProgressView.as_view(), name="api-job-progress"),
    path(f"{J}items/", items.JobItemsView.as_view(), name="api-job-items"),
    path(f"{J}assignments/", items.JobAssignmentsView.as_view(), name="api-job-assignments"),
    *review.urlpatterns(J),
    *predictions.urlpatterns(J),
    path(f"{J}labels/", labels.ConsensusLabelsView.as_view(), name="api-job-labels"),
    path(f"{J}workers/", labels.WorkerScoresView.as_view(), name="api-job-workers"),
    path(f"{J}costs/", labels.CostSummaryView.as_view(), name="api-job-costs"),
    path(f"{J}export/", labels.LabelExportView.as_view(), name="api-job-export"),
    path(f"{J}exports/<id:export_id>/", labels.LabelExportStatusView.as_view(), name="api-job-export-status"),
    path(f"{J}versions/", datasets.DatasetVersionsView.as_view(), name="api-job-versions"),
    path(f"{J}versions/<id:number>/", datasets.DatasetVersionDetailView.as_view(), name="api-job-version"),
    path(
        f"{J}versions/<id:number>/download/",
        datasets.DatasetVersionDownloadView.as_view(),
        name="api-job-version-download",
    ),
    path(f"{J}versions/<id:number>/diff/", datasets.DatasetVersionDiffView.as_view(), name="api-job-version-diff"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    *router.urls,
]
