"""A "job" sidebar filter for the change lists of a job's rows that reads a bounded number of jobs.

Django's filter on a foreign key reads and renders every job on every page view. This one offers the
``RECENT_JOBS`` newest jobs, plus the selected job when it is older, and keeps Django's parameter
(``?job__id__exact=<id>``), so links from elsewhere (and bookmarks) still filter."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import QuerySet
from django.http import HttpRequest

from tasks.models import Job
from workforce.ids import parse_id

RECENT_JOBS = 20


class RecentJobFilter(admin.SimpleListFilter):
    title = "job"
    parameter_name = "job__id__exact"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        jobs = list(Job.objects.order_by("-pk").values_list("pk", "name")[:RECENT_JOBS])
        selected = parse_id(self.value() or "")
        if selected is not None and selected not in {pk for pk, _ in jobs}:
            jobs += list(Job.objects.filter(pk=selected).values_list("pk", "name"))
        return [(str(pk), name) for pk, name in jobs]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        job_id = parse_id(value)
        if job_id is None:  # a tampered id: Django's "?e=1" page, as its own filter answers
            raise IncorrectLookupParameters(f"{value!r} is not a job id")
        return queryset.filter(job_id=job_id)
