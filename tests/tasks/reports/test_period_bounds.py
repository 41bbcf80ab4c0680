"""A report period that reaches the last day a date can name (9999-12-31) is open at its end: the finance
dashboard, the job report and the exports answer it, never with a 500."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from tasks.models import CostKind
from tasks.reports.period import Period
from tasks.services.ledger import record_cost
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


@pytest.mark.parametrize(
    "query",
    [{"since": "2026-05-01", "until": "2026-04-01"}, {"since": "not-a-date"}],
    ids=["ends-before-it-starts", "unreadable"],
)
def test_a_period_the_reports_cannot_read_gets_its_error_and_no_figures(
    finance_client: Client, query: dict[str, str]
) -> None:
    """Under a period it cannot read, a report answers 400 with the form's error and shows no figure: the
    all-time totals it used to show there read as the period's."""
    job = JobFactory(name="Spendy job")
    record_cost(job=job, kind=CostKind.REWARD, amount=Decimal("12.34"), idempotency_key="t:1", marketplace="internal")
    for page in (
        reverse("admin:tasks_finance_dashboard"),
        reverse("admin:tasks_finance_job", args=[job.pk]),
    ):
        response = finance_client.get(page, query)
        assert response.status_code == 400, page
        html = response.content.decode()
        assert "This period cannot be read" in html
        assert "12.34" not in html, page  # no figure at all
    # the same report with a readable period shows the row
    ok = finance_client.get(reverse("admin:tasks_finance_job", args=[job.pk]), {"since": "2000-01-01"})
    assert ok.status_code == 200 and "12.34" in ok.content.decode()
