"""The job page at a glance and the console's admin actions."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tasks.models import Hit, Job, JobInstructions, LabelExport
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:tasks_job_changelist"


def act(client: Client, action: str, *jobs: Job) -> Any:
    return client.post(reverse(CHANGELIST), {"action": action, "_selected_action": [j.pk for j in jobs]}, follow=True)


def test_the_job_page_shows_progress_quality_labels_cost_and_workers(ops_client: Client, labeled_job: Job) -> None:
    Job.objects.filter(pk=labeled_job.pk).update(instructions="Read **carefully** <img src=x onerror=alert(1)>")
    page = ops_client.get(reverse("admin:tasks_job_change", args=[labeled_job.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="job-dashboard"' in html
    assert "12 of 12 (100%)" in html  # answers collected
    assert "0.84 USD" in html  # cost so far
    assert html.count("<svg") >= 6  # two bars, throughput, accuracy, labels, heat map
    assert "<strong>carefully</strong>" in html and "<img src=x" not in html
    assert "Confusion: consensus vs gold" in html
    assert "cdn" not in html.lower()


def test_changing_a_running_jobs_instructions_in_the_admin_asks_for_confirmation(
    ops_client: Client, make_published_job: Any
) -> None:
    job = make_published_job(items=1)
    url = reverse("admin:tasks_job_change", args=[job.pk])
    page = ops_client.get(url)
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k in form.fields}
    for inline in page.context["inline_admin_formsets"]:  # the Ground Truth run's (read-only) formset
        management = inline.formset.management_form
        data.update({management.add_prefix(name): value for name, value in management.initial.items()})
    data.update(
        {
            "instructions": "Changed rules",
            "labels": '["pos", "neg", "neutral"]',
            "assignment_duration": "00:10:00",
            "requirements": "[]",
        }
    )
    data = {k: v for k, v in data.items() if not isinstance(v, bool) or v}
    refused = ops_client.post(url, data)
    assert refused.status_code == 200
    assert "Tick the box" in refused.content.decode()
    assert not JobInstructions.objects.filter(job=job).exists()
    accepted = ops_client.post(url, {**data, "confirm_instructions_change": "on"})
    assert accepted.status_code == 302, accepted.content.decode()[:2000]
    job.refresh_from_db()
    assert (job.instructions, job.instructions_version) == ("Changed rules", 1)


def test_clone_action_makes_a_draft_copy(ops_client: Client) -> None:
    job = JobFactory(name="Batch 1")
    response = act(ops_client, "clone_selected", job)
    assert "cloned as" in response.content.decode()
    assert Job.objects.filter(name="Batch 1 (copy)", state="draft").exists()


def test_more_answers_action(ops_client: Client, labeled_job: Job) -> None:
    response = act(ops_client, "request_one_more_answer", labeled_job)
    assert "one more answer wanted on 4 Hit(s)" in response.content.decode()
    assert set(Hit.objects.filter(job=labeled_job).values_list("assignments_wanted", flat=True)) == {4}
    refused = act(ops_client, "request_more_where_unsure", JobFactory())
    assert "more answers can be asked of running or completed jobs" in refused.content.decode()


def test_more_answers_posted_twice_from_one_page_run_once(ops_client: Client, labeled_job: Job) -> None:
    """The job list's action bar carries a nonce drawn per page; the same page posted again changes nothing."""
    page = ops_client.get(reverse(CHANGELIST)).content.decode()
    match = re.search(r'name="request_key" value="([0-9a-f-]{36})"', page)
    assert match is not None
    form = {"action": "request_one_more_answer", "_selected_action": [labeled_job.pk], "request_key": match[1]}
    first = ops_client.post(reverse(CHANGELIST), form, follow=True)
    again = ops_client.post(reverse(CHANGELIST), form, follow=True)
    assert "one more answer wanted on 4 Hit(s)" in first.content.decode()
    assert "one more answer wanted on 0 Hit(s)" in again.content.decode()
    assert set(Hit.objects.filter(job=labeled_job).values_list("assignments_wanted", flat=True)) == {4}
    assert ops_client.get(reverse(CHANGELIST)).content.decode().count(match[1]) == 0  # a new page, a new nonce


def test_export_action_runs_in_the_background_and_the_file_downloads(
    ops_client: Client, labeled_job: Job, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = act(ops_client, "export_csv", labeled_job)
    assert "CSV export queued" in response.content.decode()
    export = LabelExport.objects.get(job=labeled_job)
    assert export.state == "done"
    page = ops_client.get(reverse("admin:tasks_job_change", args=[labeled_job.pk])).content.decode()
    assert "4 / 4 (100%)" in page
    download = ops_client.get(reverse("admin:tasks_job_export_download", args=[labeled_job.pk, export.pk]))
    assert b"".join(download.streaming_content).startswith(b"external_id,label")


def test_reviewers_cannot_run_console_actions(reviewer: Any, login_client: Callable[[Any], Client]) -> None:
    JobFactory()
    client = login_client(reviewer)
    page = client.get(reverse(CHANGELIST))
    assert page.status_code == 200
    assert b"clone_selected" not in page.content and b"export_csv" not in page.content


def test_item_and_assignment_lists_render_without_the_full_count(ops_client: Client, labeled_job: Job) -> None:
    items = ops_client.get(reverse("admin:tasks_item_changelist"), {"job__id__exact": labeled_job.pk})
    assert items.status_code == 200 and items.context["cl"].show_full_result_count is False
    assignments = ops_client.get(reverse("admin:tasks_assignment_changelist"), {"job__id__exact": labeled_job.pk})
    assert assignments.status_code == 200 and assignments.context["cl"].result_count == 12


def test_a_big_jobs_figures_are_computed_in_the_background_then_shown(
    ops_client: Client, labeled_job: Job, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    from tasks import dashboard

    monkeypatch.setattr(dashboard, "INLINE_MAX_HITS", 1)
    url = reverse("admin:tasks_job_change", args=[labeled_job.pk])
    with django_capture_on_commit_callbacks(execute=False) as queued:
        first = ops_client.get(url).content.decode()
    assert 'id="job-dashboard-pending"' in first and 'id="job-dashboard"' not in first
    # The at-a-glance figures do not wait: state, both progress bars and the cost so far, from the tallies.
    assert 'id="job-glance"' in first and "12 of 12 (100%)" in first and "0.84 USD" in first
    assert len(queued) == 1  # the refresh task
    with django_capture_on_commit_callbacks(execute=False) as again:
        ops_client.get(url)
    assert again == []  # already queued: not twice
    queued[0]()  # the Celery task runs
    assert 'id="job-dashboard"' in ops_client.get(url).content.decode()


def test_stale_figures_are_shown_and_refreshed_in_the_background(
    ops_client: Client, labeled_job: Job, django_capture_on_commit_callbacks: Any
) -> None:
    from datetime import timedelta

    from django.core.cache import cache

    from tasks import dashboard

    figures = dashboard.refresh_job_dashboard(labeled_job)
    figures.computed_at -= timedelta(minutes=5)
    cache.set(dashboard.cache_key(labeled_job.pk), figures)
    with django_capture_on_commit_callbacks(execute=True) as queued:
        page = ops_client.get(reverse("admin:tasks_job_change", args=[labeled_job.pk])).content.decode()
    assert 'id="job-dashboard"' in page and len(queued) == 1
    assert cache.get(dashboard.cache_key(labeled_job.pk)).computed_at > figures.computed_at


def test_approve_passing_gold_action_reports_counts(
    ops_client: Client, make_published_job: Any, make_worker: Any
) -> None:
    from django.utils import timezone

    from tasks.models import Assignment, AssignmentState, GoldGrade
    from tests.tasks.finance_helpers import submit_work

    job = make_published_job(items=3, redundancy=1)
    worker = make_worker()
    work = [submit_work(job, worker) for _ in range(3)]
    for assignment, score in zip(work[:2], (1.0, 0.0), strict=True):
        answer = assignment.answers.first()
        GoldGrade.objects.create(
            answer=answer, job=job, worker=worker, item=answer.item, score=score, created_at=timezone.now()
        )
    response = act(ops_client, "approve_passing_gold", job)
    text = response.content.decode()
    assert "approved 1 assignment(s) that passed every gold question" in text
    assert "2 left for review (1 failed gold, 1 without gold)" in text
    assert Assignment.objects.get(pk=work[0].pk).state == AssignmentState.APPROVED
    assert Assignment.objects.filter(job=job, state=AssignmentState.SUBMITTED).count() == 2


def test_the_fair_pay_warning_comes_with_the_jobs_figures(
    ops_client: Client, make_published_job: Any, make_worker: Any, settings: Any
) -> None:
    from tasks.models import Assignment
    from tasks.services.review import approve_assignment
    from tests.conftest import SYSTEM
    from tests.tasks.finance_helpers import submit_after

    job = make_published_job(items=2, redundancy=1)
    for _ in range(2):
        approve_assignment(assignment=submit_after(job, make_worker(), 600), actor=SYSTEM)
    assert Assignment.objects.filter(job=job, state="approved").count() == 2
    url = reverse("admin:tasks_job_change", args=[job.pk])
    assert "Median effective pay" not in ops_client.get(url).content.decode()  # no minimum configured
    from django.core.cache import cache

    cache.clear()
    settings.FAIR_PAY_MIN_HOURLY = "15.00"
    page = ops_client.get(url).content.decode()
    assert "Median effective pay is" in page and "below the 15.00/hour minimum" in page
