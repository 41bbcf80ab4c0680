"""The ops manager's console: job pages, item import, lifecycle actions, read-only pages."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tasks.models import Answer, Assignment, HitItem, HitState, Item, Job, JobState
from tasks.services.collection import submit_assignment
from tasks.services.pool import assign_next_hit
from tests.conftest import SYSTEM
from tests.factories import ItemFactory, JobFactory
from workforce.audit import record_audit_event
from workforce.models import AuditEvent, Worker

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:tasks_job_changelist"
GOOD_CSV = b"external_id,text\na-1,first text\na-2,second text\n"
BAD_CSV = b"external_id,text\na-1,first text\na-2,\n,no id here\na-1,again\n"


@pytest.fixture(params=["superuser", "ops_manager"])
def staff_client(request: pytest.FixtureRequest, login_client: Callable[[Any], Client]) -> Client:
    """Run the test once as a superuser and once as an ops manager (staff in the "Ops managers" group)."""
    return login_client(request.getfixturevalue(request.param))


@pytest.fixture
def ops_client(ops_manager: Any, login_client: Callable[[Any], Client]) -> Client:
    return login_client(ops_manager)


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


# --- read-only pages ------------------------------------------------------------------------------


@pytest.fixture
def worked_job(make_published_job: Callable[..., Job], make_worker: Callable[..., Worker]) -> tuple[Job, Assignment]:
    job = make_published_job(items=2)
    worker = make_worker()
    assignment = assign_next_hit(job=job, worker=worker)
    item_id = HitItem.objects.get(hit_id=assignment.hit_id).item_id
    submit_assignment(assignment=assignment, worker=worker, answers={item_id: "neutral"})
    return job, assignment


def test_item_pages_render(staff_client: Client, worked_job: tuple[Job, Assignment]) -> None:
    job, _ = worked_job
    item = job.items.order_by("id").first()
    assert item is not None
    listing = staff_client.get(reverse("admin:tasks_item_changelist"))
    assert listing.status_code == 200
    assert item.external_id in listing.content.decode()
    assert staff_client.get(reverse("admin:tasks_item_change", args=[item.pk])).status_code == 200


def test_assignment_pages_render_with_their_answers(staff_client: Client, worked_job: tuple[Job, Assignment]) -> None:
    _, assignment = worked_job
    listing = staff_client.get(reverse("admin:tasks_assignment_changelist"))
    assert listing.status_code == 200
    short = str(assignment.uuid).split("-")[0]  # the list shows the UUID's first block, linked to the page
    change = reverse("admin:tasks_assignment_change", args=[assignment.pk])
    assert f'<a href="{change}">{short}</a>' in listing.content.decode()
    page = staff_client.get(reverse("admin:tasks_assignment_change", args=[assignment.pk]))
    assert page.status_code == 200
    assert "neutral" in page.content.decode()


def test_hit_pages_render(staff_client: Client, worked_job: tuple[Job, Assignment]) -> None:
    _, assignment = worked_job
    assert staff_client.get(reverse("admin:tasks_hit_changelist")).status_code == 200
    assert staff_client.get(reverse("admin:tasks_hit_change", args=[assignment.hit_id])).status_code == 200


def test_answers_cannot_be_edited_through_the_assignment_page(
    ops_client: Client, worked_job: tuple[Job, Assignment]
) -> None:
    _, assignment = worked_job
    answer = Answer.objects.get(assignment=assignment)
    response = ops_client.post(
        reverse("admin:tasks_assignment_change", args=[assignment.pk]),
        {
            "answers-TOTAL_FORMS": "1",
            "answers-INITIAL_FORMS": "1",
            "answers-0-id": str(answer.pk),
            "answers-0-value": '"pos"',
        },
    )
    assert response.status_code == 403
    answer.refresh_from_db()
    assert answer.value == "neutral"


def test_items_cannot_be_added_in_the_admin(staff_client: Client) -> None:
    assert staff_client.get(reverse("admin:tasks_item_add")).status_code == 403


# --- audit events ---------------------------------------------------------------------------------


@pytest.fixture
def audit_event(db: Any) -> AuditEvent:
    return record_audit_event(actor=SYSTEM, action="job.paused", object_type="job", object_id=1, reason="original")


def test_audit_events_can_be_viewed_but_not_changed_in_the_admin(staff_client: Client, audit_event: AuditEvent) -> None:
    url = reverse("admin:workforce_auditevent_change", args=[audit_event.pk])
    page = staff_client.get(url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    response = staff_client.post(url, {"reason": "rewritten", "action": "job.resumed"})
    assert response.status_code == 403
    audit_event.refresh_from_db()
    assert (audit_event.reason, audit_event.action) == ("original", "job.paused")


def test_audit_events_cannot_be_added_or_deleted_in_the_admin(staff_client: Client, audit_event: AuditEvent) -> None:
    assert staff_client.get(reverse("admin:workforce_auditevent_add")).status_code == 403
    delete_url = reverse("admin:workforce_auditevent_delete", args=[audit_event.pk])
    assert staff_client.post(delete_url, {"post": "yes"}).status_code == 403
    assert AuditEvent.objects.filter(pk=audit_event.pk).exists()


def test_the_audit_changelist_renders(staff_client: Client, audit_event: AuditEvent) -> None:
    response = staff_client.get(reverse("admin:workforce_auditevent_changelist"))
    assert response.status_code == 200
    assert "job.paused" in response.content.decode()


def test_the_recompute_consensus_action_writes_consensus_labels(
    staff_client: Client,
    make_published_job: Callable[..., Job],
    make_worker: Callable[..., Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    from tasks.models import ConsensusLabel
    from tasks.services.collection import submit_assignment
    from tasks.services.pool import assign_next_hit

    job = make_published_job(items=2, redundancy=1)
    worker = make_worker()
    for _ in range(2):
        lease = assign_next_hit(job=job, worker=worker)
        submit_assignment(assignment=lease, worker=worker, answers={lease.hit.items.get().pk: "neg"})
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = run_action(staff_client, "recompute_consensus", job)
    assert response.status_code == 302
    assert len(callbacks) == 1
    assert list(ConsensusLabel.objects.filter(job=job).values_list("value", flat=True)) == ["neg", "neg"]
    assert AuditEvent.objects.filter(action="consensus.computed", object_id=str(job.pk)).count() == 1


def test_the_scorecards_and_blocks_pages_render(staff_client: Client) -> None:
    for name in ("admin:tasks_workerjobscore_changelist", "admin:tasks_jobblock_changelist"):
        assert staff_client.get(reverse(name)).status_code == 200


def test_a_bad_requirement_is_a_form_error(ops_client: Client) -> None:
    data = job_form_data(requirements='[{"kind": "test", "test": 999999}]')
    response = ops_client.post(reverse("admin:tasks_job_add"), data)
    assert response.status_code == 200
    assert not Job.objects.filter(name="Admin-made job").exists()
    assert response.context["adminform"].form.errors["requirements"]


def test_ops_managers_promote_confident_consensus_to_gold_from_the_admin(
    ops_client: Client, make_published_job: Callable[..., Job], make_worker: Callable[..., Any]
) -> None:
    from tasks.models import ConsensusLabel, Item
    from tasks.services.collection import submit_assignment
    from tasks.services.consensus import compute_consensus
    from tasks.services.pool import assign_next_hit
    from workforce.audit import Actor

    job = make_published_job(items=1, redundancy=2)
    for worker in (make_worker(), make_worker()):
        lease = assign_next_hit(job=job, worker=worker)
        submit_assignment(assignment=lease, worker=worker, answers={lease.hit.items.get().pk: "neg"})
    compute_consensus(job=job, actor=Actor.system("tests"))
    label = ConsensusLabel.objects.get(job=job)
    response = ops_client.post(
        reverse("admin:tasks_consensuslabel_changelist"), {"action": "promote_to_gold", "_selected_action": [label.pk]}
    )
    assert response.status_code == 302
    item = Item.objects.get(pk=label.item_id)
    assert item.is_gold and item.gold_answer == "neg"


def test_the_history_button_of_a_job_opens_its_audit_trail(
    staff_client: Client, make_published_job: Callable[..., Job]
) -> None:
    job = make_published_job(items=1)
    make_published_job(items=1)  # another job, whose events must not show
    response = staff_client.get(reverse("admin:tasks_job_history", args=[job.pk]), follow=True)
    assert response.status_code == 200
    events = list(response.context["cl"].result_list)
    assert events and {(e.object_type, e.object_id) for e in events} == {("job", str(job.pk))}
    assert "job.published" in {e.action for e in events}


def test_the_consensus_list_shows_labels_as_they_read(admin_client: Any) -> None:
    from tasks.models import ConsensusLabel

    job = JobFactory()
    plain, several = ItemFactory(job=job), ItemFactory(job=job)
    ConsensusLabel.objects.create(job=job, item=plain, value="square", confidence=0.97312, method="ds", answers_count=3)
    ConsensusLabel.objects.create(job=job, item=several, value=["a", "b"], confidence=0.5, method="ds", answers_count=3)
    page = admin_client.get(reverse("admin:tasks_consensuslabel_changelist")).content.decode()
    assert '<td class="field-label">square</td>' in page and "&quot;square&quot;" not in page
    assert '<td class="field-label">a, b</td>' in page and '<td class="field-confidence_shown">0.973</td>' in page


BUTTON = re.compile(r'<button type="submit" class="job-state-button[^"]*"[^>]*>([^<]+)</button>')


def test_an_ops_manager_publishes_pauses_resumes_and_cancels_from_the_job_page(
    ops_client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    job = JobFactory(state=JobState.DRAFT, name="Buttons")
    ItemFactory(job=job)
    page = reverse("admin:tasks_job_change", args=[job.pk])

    def state_url(verb: str) -> str:
        return reverse("admin:tasks_job_state", args=[job.pk, verb])

    def buttons() -> list[str]:
        return BUTTON.findall(ops_client.get(page).content.decode())

    assert buttons() == ["Publish", "Cancel job"]
    assert ops_client.get(state_url("publish")).status_code == 405  # a state change is never a GET
    with django_capture_on_commit_callbacks(execute=True):  # publishing runs in Celery (inline here)
        response = ops_client.post(state_url("publish"))
    assert response.status_code == 302 and response["Location"] == page
    job.refresh_from_db()
    assert job.state == JobState.PUBLISHED and shown_messages(response) == ["Buttons: publishing started."]
    assert buttons() == ["Pause", "Cancel job"]
    ops_client.post(state_url("pause"))
    job.refresh_from_db()
    assert job.state == JobState.PAUSED and buttons() == ["Resume", "Cancel job"]
    refused = ops_client.post(state_url("pause"))  # already paused: the service says why, nothing changes
    assert refused.status_code == 302 and "Buttons: " in shown_messages(refused)[0]
    job.refresh_from_db()
    assert job.state == JobState.PAUSED
    ops_client.post(state_url("resume"))
    ops_client.post(state_url("cancel"))
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED and buttons() == []
    assert ops_client.post(reverse("admin:tasks_job_state", args=[job.pk, "explode"])).status_code == 404
    actions = AuditEvent.objects.filter(object_type="job", object_id=str(job.pk)).values_list("action", flat=True)
    assert {"job.published", "job.paused", "job.resumed", "job.cancelled"} <= set(actions)


def test_a_reviewer_sees_no_state_buttons_and_cannot_post_one(
    reviewer: Any, login_client: Callable[[Any], Client]
) -> None:
    job = JobFactory(state=JobState.DRAFT)
    client = login_client(reviewer)
    page = client.get(reverse("admin:tasks_job_change", args=[job.pk]))
    assert page.status_code == 200 and BUTTON.findall(page.content.decode()) == []
    assert client.post(reverse("admin:tasks_job_state", args=[job.pk, "publish"])).status_code == 403
    job.refresh_from_db()
    assert job.state == JobState.DRAFT
