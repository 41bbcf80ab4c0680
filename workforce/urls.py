"""Public workforce pages: the invitation link."""

from __future__ import annotations

from django.urls import path

from workforce import views_join

urlpatterns = [
    path("join/<str:token>/", views_join.join, name="join"),
]
