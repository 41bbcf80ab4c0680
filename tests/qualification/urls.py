"""The project's urls plus the qualification pages at ``qualifications/`` (until config.urls includes them)."""

from __future__ import annotations

from django.urls import URLResolver, include, path

from config.urls import urlpatterns as project_urlpatterns

_wired = any(isinstance(p, URLResolver) and p.namespace == "qualification" for p in project_urlpatterns)

urlpatterns = list(project_urlpatterns)
if not _wired:
    urlpatterns.insert(0, path("qualifications/", include("qualification.urls")))
