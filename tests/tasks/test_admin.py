"""The ops manager's console: job pages, item import and lifecycle actions (more pages in test_admin_pages)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tasks.models import HitState, Item, Job, JobState
from tests.factories import ItemFactory, JobFactory
from workforce.models import AuditEvent, Worker

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:tasks_job_changelist"
GOOD_CSV = b"external_id,text\na-1,first text\na-2,second text\n"
BAD_CSV = b"external_id,text\na-1,first text\na-2,\n,no id here\na-1,again\n"


def shown_messages(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def run_action(client: Client, action: str, *jobs: Job) -> Any:
    return client.post(reverse(CHANGELIST), {"action": action, "_selected_action": [j.pk for j in jobs]})


def job_form_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "Admin-made job",
        "description": "",
        "instructions": "Pick one.",
        "task_kind": "text_classification",
        "labels": '["yes", "no"]',
        "items_per_hit": "1",
        "redundancy": "3",
        "consensus_method": "mv",
        "reward": "0.05",
        "currency": "USD",
        "assignment_duration": "00:10:00",
        "marketplace": "internal",
        "gold_rate": "0.1",
        "block_below_accuracy": "",
        "block_after_gold": "5",
        "gold_miss_action": "off",
        "requirements": "[]",
        # The (read-only) Ground Truth run's formset, as the browser posts it for users who may see runs.
        **{f"labeling_job-{name}": "0" for name in ("TOTAL_FORMS", "INITIAL_FORMS", "MIN_NUM_FORMS", "MAX_NUM_FORMS")},
    }
    data.update(overrides)
    return data


# --- job pages ------------------------------------------------------------------------------------


def test_the_job_changelist_renders_with_progress(staff_client: Client, make_published_job: Callable[..., Job]) -> None:
    job = make_published_job(items=2, name="Listed job")
    JobFactory(name="Draft job")
    response = staff_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Listed job" in page
    assert "Draft job" in page
    assert reverse("admin:tasks_job_change", args=[job.pk]) in page
    assert "0%" in page


def test_the_job_change_page_renders_with_an_import_link(
    staff_client: Client, make_published_job: Callable[..., Job]
) -> None:
    job = make_published_job(items=2)
    response = staff_client.get(reverse("admin:tasks_job_change", args=[job.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert reverse("admin:tasks_job_import", args=[job.pk]) in page
    assert "Answers collected:" in page and "0 of 6 (0%)" in page  # the progress above the form


def test_the_job_add_page_renders(staff_client: Client) -> None:
    assert staff_client.get(reverse("admin:tasks_job_add")).status_code == 200


def test_an_ops_manager_adds_a_job_through_the_form(ops_client: Client, ops_manager: Any) -> None:
    response = ops_client.post(reverse("admin:tasks_job_add"), job_form_data(labels='[" yes ", "no"]'))
    assert response.status_code == 302
    job = Job.objects.get(name="Admin-made job")
    assert job.labels == ["yes", "no"]
    assert job.state == JobState.DRAFT
    assert job.created_by == ops_manager


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ('["only-one"]', "A job needs at least two labels."),
        ('["cat", "cat"]', "Each label must appear once."),
        ('["cat", ""]', "Enter the labels one per line"),
        ("[1, 2]", "Enter the labels one per line"),
        ('["cat", "dog"', "Enter a valid JSON."),
        ("cat\ncat", "Each label must appear once."),
        ("cat,", "A job needs at least two labels."),
        ("", "This field is required."),
    ],
)
def test_the_job_form_rejects_bad_label_lists_with_a_form_error(ops_client: Client, labels: str, message: str) -> None:
    response = ops_client.post(reverse("admin:tasks_job_add"), job_form_data(labels=labels))
    assert response.status_code == 200
    assert message in str(response.context["adminform"].form.errors["labels"])
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("typed", "labels"),
    [
        ("cat, dog", ["cat", "dog"]),
        ("cat\r\n dog \r\n\r\nfish", ["cat", "dog", "fish"]),
        ("yes, definitely\nno", ["yes, definitely", "no"]),  # lines are never split at commas
        ('["a", "b"]', ["a", "b"]),
    ],
)
def test_labels_are_typed_one_per_line_or_with_commas(ops_client: Client, typed: str, labels: list[str]) -> None:
    response = ops_client.post(reverse("admin:tasks_job_add"), job_form_data(labels=typed))
    assert response.status_code == 302
    job = Job.objects.get(name="Admin-made job")
    assert job.labels == labels
    page = ops_client.get(reverse("admin:tasks_job_change", args=[job.pk])).content.decode()
    assert ">\n" + "\n".join(labels) + "</textarea>" in page  # shown back one per line


def test_the_job_form_rejects_a_negative_reward(ops_client: Client) -> None:
    response = ops_client.post(reverse("admin:tasks_job_add"), job_form_data(reward="-1"))
    assert response.status_code == 200
    assert "reward" in response.context["adminform"].form.errors
    assert not Job.objects.exists()


def test_a_reviewer_cannot_add_jobs(reviewer: Any, login_client: Callable[[Any], Client]) -> None:
    client = login_client(reviewer)
    assert client.get(reverse("admin:tasks_job_add")).status_code == 403
    assert client.post(reverse("admin:tasks_job_add"), job_form_data()).status_code == 403
    assert not Job.objects.exists()
    # ...but may look at the job list.
    assert client.get(reverse(CHANGELIST)).status_code == 200


def test_a_reviewer_cannot_change_a_job(reviewer: Any, login_client: Callable[[Any], Client]) -> None:
    job = JobFactory(name="Untouched")
    response = login_client(reviewer).post(
        reverse("admin:tasks_job_change", args=[job.pk]), job_form_data(name="Renamed")
    )
    assert response.status_code == 403
    job.refresh_from_db()
    assert job.name == "Untouched"


# --- item import in the admin ---------------------------------------------------------------------


def test_the_import_page_renders(staff_client: Client) -> None:
    job = JobFactory()
    response = staff_client.get(reverse("admin:tasks_job_import", args=[job.pk]))
    assert response.status_code == 200
    assert b'enctype="multipart/form-data"' in response.content


def test_the_import_view_accepts_a_csv(staff_client: Client) -> None:
    job = JobFactory()
    response = staff_client.post(
        reverse("admin:tasks_job_import", args=[job.pk]), {"file": SimpleUploadedFile("items.csv", GOOD_CSV)}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:tasks_job_change", args=[job.pk])
    assert shown_messages(response) == ["Imported 2 new item(s); 0 were already there unchanged."]
    assert sorted(Item.objects.filter(job=job).values_list("external_id", flat=True)) == ["a-1", "a-2"]
    assert AuditEvent.objects.filter(action="items.imported", object_id=str(job.pk)).count() == 1


def test_the_import_view_reports_bad_rows_with_line_numbers_without_writing(staff_client: Client) -> None:
    job = JobFactory()
    response = staff_client.post(
        reverse("admin:tasks_job_import", args=[job.pk]), {"file": SimpleUploadedFile("items.csv", BAD_CSV)}
    )
    assert response.status_code == 200
    assert [e.line for e in response.context["row_errors"]] == [3, 4, 5]
    page = response.content.decode()
    assert "3 bad row(s); nothing was imported." in page
    assert "<tr><td>3</td><td>a text job needs a non-empty &#x27;text&#x27;</td></tr>" in page
    assert "<tr><td>4</td><td>the id is empty</td></tr>" in page
    assert "<tr><td>5</td>" in page
    assert not Item.objects.exists()
    assert not AuditEvent.objects.filter(action="items.imported").exists()


def test_the_import_view_shows_service_errors_on_the_form(staff_client: Client) -> None:
    job = JobFactory(state=JobState.CANCELLED)
    response = staff_client.post(
        reverse("admin:tasks_job_import", args=[job.pk]), {"file": SimpleUploadedFile("items.csv", GOOD_CSV)}
    )
    assert response.status_code == 200
    assert "items can only be added to draft, published or paused jobs" in str(response.context["form"].errors)
    assert not Item.objects.exists()


def test_a_reviewer_cannot_import_items_in_the_admin(reviewer: Any, login_client: Callable[[Any], Client]) -> None:
    job = JobFactory()
    response = login_client(reviewer).post(
        reverse("admin:tasks_job_import", args=[job.pk]), {"file": SimpleUploadedFile("items.csv", GOOD_CSV)}
    )
    assert response.status_code == 403
    assert not Item.objects.exists()


def test_the_import_view_of_an_unknown_job_is_404(ops_client: Client) -> None:
    assert ops_client.get(reverse("admin:tasks_job_import", args=[987654])).status_code == 404


def test_the_import_view_requires_a_staff_login(worker: Worker, login_client: Callable[[Any], Client]) -> None:
    job = JobFactory()
    response = login_client(worker.user).post(
        reverse("admin:tasks_job_import", args=[job.pk]), {"file": SimpleUploadedFile("items.csv", GOOD_CSV)}
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert not Item.objects.exists()


# --- lifecycle actions ----------------------------------------------------------------------------


def job_events(job: Job) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    return [
        (e.action, e.actor_label, e.before, e.after)
        for e in AuditEvent.objects.filter(object_type="job", object_id=str(job.pk)).order_by("id")
    ]


def test_publish_pause_resume_and_cancel_actions_change_state_and_write_audit_events(staff_client: Client) -> None:
    job = JobFactory()
    ItemFactory.create_batch(3, job=job)
    user = staff_client.get(reverse(CHANGELIST)).wsgi_request.user

    # Publishing is handed to Celery (eager without a broker, so it has run when the page answers).
    response = run_action(staff_client, "publish_selected", job)
    assert shown_messages(response) == [f"{job.name}: publishing started."]
    job.refresh_from_db()
    assert job.state == JobState.PUBLISHED
    assert job.published_at is not None
    assert job.hits.filter(state=HitState.OPEN).count() == 3

    run_action(staff_client, "pause_selected", job)
    assert Job.objects.get(pk=job.pk).state == JobState.PAUSED
    run_action(staff_client, "resume_selected", job)
    assert Job.objects.get(pk=job.pk).state == JobState.PUBLISHED
    run_action(staff_client, "cancel_selected", job)
    assert Job.objects.get(pk=job.pk).state == JobState.CANCELLED
    assert not job.hits.exclude(state=HitState.CANCELLED).exists()

    assert job_events(job) == [
        ("job.published", user.username, {"state": "draft"}, {"state": "published"}),
        ("job.paused", user.username, {"state": "published"}, {"state": "paused"}),
        ("job.resumed", user.username, {"state": "paused"}, {"state": "published"}),
        ("job.cancelled", user.username, {"state": "published"}, {"state": "cancelled"}),
    ]
    assert set(AuditEvent.objects.filter(object_type="job").values_list("actor_id", flat=True)) == {str(user.pk)}


def test_publishing_a_job_without_items_is_refused_with_a_message(
    ops_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    job = JobFactory(name="Empty job")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = run_action(ops_client, "publish_selected", job)
    assert callbacks == []
    assert response.status_code == 302
    assert shown_messages(response) == ["Empty job: Import items before publishing the job."]
    assert Job.objects.get(pk=job.pk).state == JobState.DRAFT
    assert not AuditEvent.objects.filter(action="job.published").exists()


def test_pausing_a_draft_is_refused_with_a_message_and_no_audit_event(ops_client: Client) -> None:
    job = JobFactory(name="Drafty")
    response = run_action(ops_client, "pause_selected", job)
    messages = shown_messages(response)
    assert len(messages) == 1
    assert messages[0].startswith("Drafty: Job")
    assert "draft" in messages[0]
    assert Job.objects.get(pk=job.pk).state == JobState.DRAFT
    assert not AuditEvent.objects.filter(action="job.paused").exists()


def test_an_action_on_several_jobs_reports_each_outcome(
    ops_client: Client, make_published_job: Callable[..., Job]
) -> None:
    running = make_published_job(items=1, name="Running")
    draft = JobFactory(name="Draft")
    response = run_action(ops_client, "pause_selected", running, draft)
    messages = shown_messages(response)
    assert "Paused 1 job(s)." in messages
    assert any(m.startswith("Draft: ") for m in messages)
    assert Job.objects.get(pk=running.pk).state == JobState.PAUSED
    assert Job.objects.get(pk=draft.pk).state == JobState.DRAFT


def test_a_reviewer_cannot_run_job_actions(
    reviewer: Any, login_client: Callable[[Any], Client], make_published_job: Callable[..., Job]
) -> None:
    job = make_published_job(items=1)
    client = login_client(reviewer)
    assert "pause_selected" not in client.get(reverse(CHANGELIST)).content.decode()
    run_action(client, "pause_selected", job)
    run_action(client, "cancel_selected", job)
    assert Job.objects.get(pk=job.pk).state == JobState.PUBLISHED
    assert not AuditEvent.objects.filter(action__in=["job.paused", "job.cancelled"]).exists()
