"""List filters on big tables (the audit trail, the ledger) offer a cached list of values and fixed date
ranges: the list pages do not run SELECT DISTINCT over the whole table on every page."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.factories import UserFactory
from workforce.audit import QueuedEvent, record_audit_events
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(db: Any) -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def _distincts(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "DISTINCT" in q["sql"].upper()]


def test_the_audit_list_filters_by_action_from_a_cached_list(root: Client, settings: Any) -> None:
    from tests.conftest import SYSTEM

    record_audit_events([QueuedEvent(SYSTEM, action, "job", n) for n, action in enumerate(["job.a", "job.b", "job.a"])])
    url = reverse("admin:workforce_auditevent_changelist")
    first = root.get(url)
    assert first.status_code == 200
    choices = [
        c["display"]
        for spec in first.context["cl"].filter_specs
        if spec.title == "action"
        for c in spec.choices(first.context["cl"])
    ]
    assert {"job.a", "job.b"} <= set(choices[1:])  # after "All"
    with CaptureQueriesContext(connection) as queries:
        again = root.get(url)
    assert again.status_code == 200 and _distincts(queries) == []
    only_a = root.get(url, {"action": "job.a"})
    assert {e.action for e in only_a.context["cl"].result_list} == {"job.a"}
    assert AuditEvent.objects.filter(action="job.a").count() == len(only_a.context["cl"].result_list) == 2


def test_the_ledger_list_runs_no_distinct_once_its_values_are_cached(root: Client) -> None:
    url = reverse("admin:tasks_costentry_changelist")
    assert root.get(url).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        assert root.get(url, {"kind": "reward"}).status_code == 200
    assert _distincts(queries) == []
