"""The worker's qualification pages; the project includes these at ``qualifications/``."""

from __future__ import annotations

from django.urls import path

from qualification import views

app_name = "qualification"

urlpatterns = [
    path("", views.test_list, name="list"),
    path("<int:test_id>/start/", views.start, name="start"),
    path("attempts/<uuid:attempt_uuid>/", views.attempt_page, name="attempt"),
    path("attempts/<uuid:attempt_uuid>/submit/", views.submit, name="submit"),
    path("attempts/<uuid:attempt_uuid>/result/", views.result, name="result"),
]
