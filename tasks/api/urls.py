from __future__ import annotations

from django.urls import path

from tasks.api import views

urlpatterns = [
    path("jobs/<int:job_id>/items/import/", views.ItemImportView.as_view(), name="api-item-import"),
    path("jobs/<int:job_id>/progress/", views.JobProgressView.as_view(), name="api-job-progress"),
]
