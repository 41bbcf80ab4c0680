"""The job page shows adaptive redundancy's progress (the status API's figures) with a fixed number of queries."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from tasks import dashboard
from tasks.models import AdaptiveSkills, Job
from tasks.services.adaptive import allocate_adaptive_answers
from tasks.services.adaptive_state import refit_adaptive_skills
from tasks.services.consensus import compute_consensus
from tests.tasks.services.test_adaptive import _publish, _run_crowd
from workforce.audit import Actor

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")


def _adaptive_rows(client: Client, job: Job) -> dict[str, str]:
    response = client.get(reverse("admin:tasks_job_change", args=[job.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    card = re.search(r'<div class="console-card" id="job-adaptive">(.*?)</table>', page, re.S)
    assert card is not None, "no adaptive card on the page"
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", card.group(1), re.S)
    return {name: re.sub(r"<[^>]+>", "", value) for name, value in rows}


def _run(job: Job, make_worker: Any) -> None:
    _run_crowd(job, [make_worker() for _ in range(6)])
    compute_consensus(job=job, actor=SYSTEM, method="mv")


def test_the_page_of_an_adaptive_job_shows_the_status_apis_figures(
    ops_client: Client, make_worker: Any, ops_manager: Any
) -> None:
    job = _publish(3, 2)  # minimum 2, maximum 5, target 0.8: easy items stop at 2, disputed ones go to 5
    _run(job, make_worker)
    refit_adaptive_skills(job=job, now=datetime(2026, 11, 2, 9, 30, tzinfo=UTC))
    api = APIClient()
    api.force_authenticate(ops_manager)
    status = api.get(f"/api/jobs/{job.pk}/status/").json()["adaptive"]
    rows = _adaptive_rows(ops_client, job)
    assert rows == {
        "Hits still collecting": "0",
        "Hits stopped early (below the maximum)": "3",
        "Hits at the maximum": "2",
        "Extra answers used": "6",
        "Answers saved vs 5 per Hit": "9",
        "Items at the target (last consensus)": "3",
        "Worker skills last re-fit": "2026-11-02 09:30 UTC (16 answers)",
        "Budget exhausted": "no",
    }
    assert (status["hits_stopped_early"], status["answers_saved"], status["skills_answers_at_fit"]) == (3, 9, 16)


def test_the_page_says_when_the_budget_ran_out(
    ops_client: Client, make_worker: Any, django_capture_on_commit_callbacks: Any
) -> None:
    job = _publish(1, 2, budget_cap=Decimal("0.40"))  # room for 2 extra answers, the disputed items want 6
    _run_crowd(job, [make_worker() for _ in range(6)], on_commit=django_capture_on_commit_callbacks)
    rows = _adaptive_rows(ops_client, job)
    assert rows["Budget exhausted"].startswith("yes, since ")
    assert rows["Extra answers used"] == "2" and rows["Hits still collecting"] == "0"


def test_the_page_says_which_items_a_short_budget_serves_first(ops_client: Client, make_worker: Any) -> None:
    job = _publish(0, 2, budget_cap=Decimal("0.30"), adaptive_target=0.999)  # room for 2 of 6 extra answers
    split = job.items.order_by("external_id").last()
    _run_crowd(job, [make_worker() for _ in range(2)], answer=lambda item, i: "neg" if item == split and i else "pos")
    assert "Budget short" not in _adaptive_rows(ops_client, job)
    assert allocate_adaptive_answers(job=job) == 1
    cache.clear()
    row = _adaptive_rows(ops_client, job)["Budget short"]
    step = AdaptiveSkills.objects.get(job=job).budget_step
    assert step is not None and f"below {step} confidence first" in row


def test_a_fixed_redundancy_job_has_no_adaptive_card(ops_client: Client, make_published_job: Any) -> None:
    job = make_published_job(items=2)
    page = ops_client.get(reverse("admin:tasks_job_change", args=[job.pk])).content.decode()
    assert "Answers collected:" in page and 'id="job-adaptive"' not in page


def _queries(client: Client, job: Job, *, cold: bool) -> int:
    url = reverse("admin:tasks_job_change", args=[job.pk])
    client.get(url)
    if cold:
        cache.clear()  # the page computes the job's figures (adaptive ones included) inline, as for a small job
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured.captured_queries)


@pytest.mark.parametrize("cold", [True, False])
def test_the_job_page_costs_a_fixed_number_of_queries_whatever_the_adaptive_jobs_size(
    ops_client: Client, make_worker: Any, make_published_job: Any, cold: bool
) -> None:
    small, big = _publish(1, 1), _publish(12, 8)
    for job in (small, big):
        _run(job, make_worker)
    fixed = make_published_job(items=2)
    assert _queries(ops_client, small, cold=cold) == _queries(ops_client, big, cold=cold)
    # The card's figures are the status API's selector, computed with the cached figures: three aggregate
    # queries when they are computed, none when they are read from the cache.
    assert _queries(ops_client, big, cold=cold) - _queries(ops_client, fixed, cold=cold) == (3 if cold else 0)


def test_a_big_jobs_card_comes_with_its_figures_computed_in_the_background(
    ops_client: Client, make_worker: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    job = _publish(3, 2)
    _run(job, make_worker)
    monkeypatch.setattr(dashboard, "INLINE_MAX_HITS", 1)
    url = reverse("admin:tasks_job_change", args=[job.pk])
    with django_capture_on_commit_callbacks(execute=False) as queued:
        first = ops_client.get(url).content.decode()
    assert 'id="job-dashboard-pending"' in first and 'id="job-adaptive"' not in first
    queued[0]()  # the Celery task runs
    assert _adaptive_rows(ops_client, job)["Hits stopped early (below the maximum)"] == "3"
