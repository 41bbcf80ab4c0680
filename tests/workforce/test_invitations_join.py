"""The join page (``/join/<token>/``) and an imported MTurk worker joining the internal pool end to end."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from qualification.models import Grant
from qualification.services import create_test, grant_qualification
from tasks.models import Answer, Assignment, AssignmentState, CostEntry, CostKind, Job, WorkerJobScore
from tasks.services.ledger import record_cost
from tasks.services.review import approve_assignment, pay_bonus
from tests.conftest import SYSTEM
from tests.factories import JobFactory, UserFactory, WorkerFactory
from tests.qualification.conftest import sentiment_questions
from workforce.audit import seal_all_audit_events, verify_audit_chain
from workforce.invitations import invite_workers, revoke_invitation
from workforce.models import AuditEvent, Invitation, Marketplace, PendingAuditEvent, Worker
from workforce.services import get_or_create_workers
from workforce.views_join import GONE

pytestmark = pytest.mark.django_db

MTURK_ID = "A3HISTORYWORKER"
PASSWORD = "a long pass phrase 42"


def new_link(**kwargs: Any) -> tuple[Invitation, str]:
    [(invitation, token)] = invite_workers(actor=SYSTEM, **(kwargs or {"count": 1}))
    return invitation, token


def join_url(token: str) -> str:
    return reverse("join", args=[token])


def sign_up(client: Client, token: str, username: str = "newcomer", password: str = PASSWORD, **extra: Any) -> Any:
    return client.post(join_url(token), {"username": username, "password1": password, "password2": password, **extra})


# --- the page ----------------------------------------------------------------------------------------------


def test_the_join_page_shows_a_sign_up_form() -> None:
    _, token = new_link()
    response = Client().get(join_url(token))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="username"' in page and 'name="password1"' in page and 'name="password2"' in page
    assert "csrfmiddlewaretoken" in page
    assert "no-cache" in response["Cache-Control"]
    assert "Your earlier work" not in page  # a fresh invitation has no history to keep


def test_a_worker_invitation_says_the_history_is_kept() -> None:
    worker = get_or_create_workers(marketplace=Marketplace.MTURK, external_ids=[MTURK_ID])[MTURK_ID]
    _, token = new_link(workers=[worker])
    page = Client().get(join_url(token)).content.decode()
    assert "Your earlier work" in page
    assert MTURK_ID not in page


@pytest.mark.parametrize(("state", "status"), [("unknown", 404), ("expired", 410), ("used", 410), ("revoked", 410)])
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_link_that_cannot_be_used_gets_one_plain_answer(state: str, status: int, method: str) -> None:
    invitation, token = new_link()
    if state == "unknown":
        token = "not-a-real-token"
    elif state == "expired":
        Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif state == "used":
        sign_up(Client(), token, username="first")
    else:
        revoke_invitation(invitation=invitation, actor=SYSTEM)
    users = get_user_model().objects.count()
    client = Client()
    response = sign_up(client, token, username="second") if method == "post" else client.get(join_url(token))
    assert response.status_code == status
    page = response.content.decode()
    assert GONE in page
    assert 'name="password1"' not in page
    assert get_user_model().objects.count() == users


def test_signing_up_creates_the_account_signs_in_and_opens_the_work_list() -> None:
    _, token = new_link()
    client = Client()
    response = sign_up(client, token)
    assert response.status_code == 302 and response["Location"] == reverse("work-list")
    user = get_user_model().objects.get(username="newcomer")
    assert user.worker.marketplace == Marketplace.INTERNAL
    work = client.get(reverse("work-list"))
    assert work.status_code == 200
    assert "Welcome to the worker pool" in work.content.decode()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"password2": "something else 42"}, "password2"),
        ({"password1": "password", "password2": "password"}, "password2"),
        ({"username": "TAKEN"}, "username"),
        ({"username": "bad name!"}, "username"),
    ],
)
def test_bad_sign_up_input_shows_the_form_again_and_creates_nothing(data: dict[str, str], field: str) -> None:
    UserFactory(username="taken")
    invitation, token = new_link()
    form = {"username": "newcomer", "password1": PASSWORD, "password2": PASSWORD, **data}
    response = Client().post(join_url(token), form)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not get_user_model().objects.filter(username="newcomer").exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


def test_a_signed_in_user_without_a_worker_joins_with_their_account() -> None:
    """The gap this closes: an ops manager creates a user in the admin and sends them a link."""
    user = UserFactory(username="made-in-admin")
    client = Client()
    client.force_login(user)
    assert client.get(reverse("work-list")).status_code == 403
    _, token = new_link()
    page = client.get(join_url(token)).content.decode()
    assert "Join with this account" in page
    response = client.post(join_url(token))
    assert response.status_code == 302 and response["Location"] == reverse("work-list")
    assert Worker.objects.get(user=user).marketplace == Marketplace.INTERNAL
    assert client.get(reverse("work-list")).status_code == 200


@pytest.mark.parametrize("who", ["staff", "worker"])
def test_staff_and_existing_workers_are_told_they_cannot_join_with_their_account(who: str) -> None:
    user = UserFactory(is_staff=True) if who == "staff" else WorkerFactory().user
    invitation, token = new_link()
    client = Client()
    client.force_login(user)
    for response in (client.get(join_url(token)), client.post(join_url(token))):
        assert response.status_code == 200
        page = response.content.decode()
        assert "Join with this account" not in page
        assert ("Staff accounts cannot join" if who == "staff" else "already works in the pool") in page
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


def test_the_join_form_needs_the_csrf_token() -> None:
    _, token = new_link()
    response = sign_up(Client(enforce_csrf_checks=True), token)
    assert response.status_code == 403
    assert not get_user_model().objects.filter(username="newcomer").exists()


def test_posts_to_the_join_page_are_rate_limited(settings: Any) -> None:
    settings.WORKER_JOIN_RATE_LIMIT = 2
    _, token = new_link()
    client = Client()
    for _ in range(2):
        assert sign_up(client, token, password2="mismatch 42").status_code == 200
    response = sign_up(client, token)
    assert response.status_code == 429
    assert response["Retry-After"]
    assert not get_user_model().objects.filter(username="newcomer").exists()
    assert client.get(join_url(token)).status_code == 200  # reading the page is not limited


# --- an imported MTurk worker joins and keeps their history -------------------------------------------------


def _mturk_history() -> tuple[Worker, Any, Job]:
    """An MTurk worker as the history import leaves one: a qualification grant, a per-job score, a paid reward."""
    worker = get_or_create_workers(marketplace=Marketplace.MTURK, external_ids=[MTURK_ID])[MTURK_ID]
    test = create_test(actor=SYSTEM, name="Sentiment basics", questions=sentiment_questions(), labels=["pos", "neg"])
    grant_qualification(worker=worker, test=test, score=92.0, actor=SYSTEM)
    history = JobFactory(name="MTurk history", marketplace=Marketplace.MTURK)
    WorkerJobScore.objects.create(job=history, worker=worker, accuracy=0.9, answers=40, updated_at=timezone.now())
    record_cost(
        job=history,
        kind=CostKind.REWARD,
        amount=Decimal("0.05"),
        marketplace=Marketplace.MTURK,
        worker=worker,
        idempotency_key="history-reward",
    )
    return worker, test, history


def test_an_imported_mturk_worker_joins_works_in_the_pool_and_keeps_their_history(
    make_published_job: Callable[..., Job],
) -> None:
    worker, test, history = _mturk_history()
    # Only workers who passed the test may work on this job: the grant from the MTurk days counts.
    job = make_published_job(items=3, requirements=[{"kind": "test", "test": test.pk, "min_score": 80}])
    [(_, token)] = invite_workers(actor=SYSTEM, workers=[worker])

    joining = Client()
    assert joining.get(join_url(token)).status_code == 200
    response = sign_up(joining, token, username="former-turker")
    assert response.status_code == 302 and response["Location"] == reverse("work-list")

    # Later, on another device: sign in with the new password and work.
    client = Client()
    login = client.post(reverse("login"), {"username": "former-turker", "password": PASSWORD})
    assert login.status_code == 302
    work = client.get(reverse("work-list"))
    assert work.status_code == 200
    assert job.name in work.content.decode()
    started = client.post(reverse("start-job", args=[job.pk]))
    assert started.status_code == 302
    match = re.fullmatch(r"/work/tasks/([0-9a-f-]{36})/", started["Location"])
    assert match, started["Location"]
    assignment = Assignment.objects.get(uuid=match.group(1))
    assert client.get(reverse("task", args=[assignment.uuid])).status_code == 200
    submitted = client.post(reverse("submit-task", args=[assignment.uuid]), {"answer-1": "pos"})
    assert submitted.status_code == 302
    assert client.get(reverse("my-scores")).status_code == 200

    # The work is the same worker's: the MTurk row, now linked to the account.
    assignment.refresh_from_db()
    assert assignment.state == AssignmentState.SUBMITTED
    assert (assignment.worker_id, assignment.marketplace) == (worker.pk, Marketplace.INTERNAL)
    assert Answer.objects.get(assignment=assignment).worker_id == worker.pk
    worker.refresh_from_db()
    user = get_user_model().objects.get(username="former-turker")
    assert (worker.user_id, worker.marketplace, worker.external_id) == (user.pk, Marketplace.MTURK, MTURK_ID)
    assert Worker.objects.count() == 1
    assert Grant.objects.get(worker=worker, test=test).revoked_at is None
    assert WorkerJobScore.objects.filter(worker=worker, job=history, accuracy=0.9).exists()
    assert CostEntry.objects.filter(worker=worker, idempotency_key="history-reward").exists()

    # Reviewing pays it as internal-pool work, not through MTurk.
    approve_assignment(assignment=assignment, actor=SYSTEM)
    pay = CostEntry.objects.get(assignment=assignment)
    assert (pay.kind, pay.marketplace) == (CostKind.INTERNAL_PAY, Marketplace.INTERNAL)

    # Neither the token nor the MTurk WorkerId is anywhere in the trail.
    seal_all_audit_events()
    trail = json.dumps(list(AuditEvent.objects.values()), default=str)
    trail += json.dumps(list(PendingAuditEvent.objects.values()), default=str)
    assert token not in trail
    assert MTURK_ID not in trail
    assert verify_audit_chain() is None


def test_an_mturk_worker_without_an_account_still_cannot_open_worker_pages() -> None:
    user = UserFactory()
    get_or_create_workers(marketplace=Marketplace.MTURK, external_ids=[MTURK_ID])
    client = Client()
    client.force_login(user)
    assert client.get(reverse("work-list")).status_code == 403


def test_a_linked_worker_who_is_blocked_still_sees_the_pages_but_gets_no_work(
    make_published_job: Callable[..., Job],
) -> None:
    """As for internal workers: the pages open, the pool refuses new work (``tasks.services.pool``)."""
    worker = get_or_create_workers(marketplace=Marketplace.MTURK, external_ids=[MTURK_ID])[MTURK_ID]
    [(_, token)] = invite_workers(actor=SYSTEM, workers=[worker])
    client = Client()
    sign_up(client, token)
    Worker.objects.filter(pk=worker.pk).update(is_blocked=True)
    job = make_published_job(items=1)
    assert client.get(reverse("work-list")).status_code == 200
    response = client.post(reverse("start-job", args=[job.pk]), follow=True)
    assert "blocked" in response.content.decode()
    assert not Assignment.objects.exists()


def test_a_bonus_for_a_linked_mturk_worker_on_a_pool_job_is_booked_as_pool_pay(
    make_published_job: Callable[..., Job],
) -> None:
    worker = get_or_create_workers(marketplace=Marketplace.MTURK, external_ids=[MTURK_ID])[MTURK_ID]
    [(_, token)] = invite_workers(actor=SYSTEM, workers=[worker])
    sign_up(Client(), token)
    job = make_published_job(items=1, redundancy=1, budget_cap=Decimal("10.00"))
    from tasks.services.collection import submit_assignment
    from tasks.services.pool import assign_next_hit

    worker.refresh_from_db()
    lease = assign_next_hit(job=job, worker=worker)
    submit_assignment(assignment=lease.uuid, worker=worker, answers={1: "pos"}, by_place=True)
    assert pay_bonus(job=job, worker=worker, amount=Decimal("0.10"), reason="thanks", key="linked-bonus", actor=SYSTEM)
    bonus = CostEntry.objects.get(kind=CostKind.BONUS)
    assert bonus.marketplace == Marketplace.INTERNAL
