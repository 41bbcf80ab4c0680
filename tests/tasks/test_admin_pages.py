"""The ops manager's console: record pages, audit events, consensus, gold promotion and state buttons."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tasks.models import Answer, Assignment, HitItem, Item, Job, JobState
from tasks.services.collection import submit_assignment
from tasks.services.pool import assign_next_hit
from tests.conftest import SYSTEM
from tests.factories import ItemFactory, JobFactory
from tests.tasks.test_admin import job_form_data, run_action, shown_messages
from workforce.audit import record_audit_event
from workforce.models import AuditEvent, Worker

pytestmark = pytest.mark.django_db


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
    from tasks.models import ConsensusLabel
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
