"""A report period that reaches the last day a date can name (9999-12-31) is open at its end: the finance
dashboard, the job report and the exports answer it, never with a 500."""

from __future__ import annotations

from datetime import date

import pytest
from django.test import Client
from django.urls import reverse

from tasks.reports.period import Period
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db

LAST_DAY = date.max.isoformat()  # 9999-12-31


def test_a_period_until_the_last_day_has_no_end() -> None:
    assert Period(until=date.max).end is None
    assert Period(since=date.max, until=date.max).start is not None
    assert Period(until=date(2026, 1, 31)).end is not None


@pytest.mark.parametrize(
    "query",
    [
        {"until": LAST_DAY},
        {"since": LAST_DAY, "until": LAST_DAY},
        {"since": "0001-01-01", "until": LAST_DAY},
    ],
    ids=["until-last-day", "only-the-last-day", "every-day"],
)
def test_the_finance_reports_answer_a_period_reaching_the_last_day(
    finance_client: Client, query: dict[str, str]
) -> None:
    job = JobFactory()
    pages = [
        reverse("admin:tasks_finance_dashboard"),
        reverse("admin:tasks_finance_job", args=[job.pk]),
        reverse("admin:tasks_finance_export", args=[job.pk, "worker", "csv"]),
        reverse("admin:tasks_finance_export", args=[job.pk, "day", "xlsx"]),
        reverse("admin:tasks_finance_ledger_export"),
    ]
    for page in pages:
        response = finance_client.get(page, query)
        assert response.status_code == 200, (page, response.status_code)
