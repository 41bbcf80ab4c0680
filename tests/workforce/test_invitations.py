"""Invitations (``workforce.invitations``): creating, accepting once, revoking, the audit trail, and the admin."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.conftest import SYSTEM
from tests.factories import UserFactory, WorkerFactory
from workforce.audit import Actor, seal_all_audit_events, verify_audit_chain
from workforce.invitations import (
    ACCEPTED,
    ACCOUNT,
    BLOCKED,
    EXPIRED,
    OPEN,
    REQUEST,
    REVOKED,
    UNKNOWN,
    USED,
    InvitationError,
    accept_invitation,
    filter_invitations_by_state,
    get_invitation_state,
    invite_workers,
    join_with_new_account,
    joiner_actor,
    revoke_invitation,
    revoke_invitations,
)
from workforce.models import AuditEvent, Invitation, Marketplace, Worker
from workforce.services import get_or_create_workers

pytestmark = pytest.mark.django_db

MTURK_ID = "A1IMPORTEDWORKER"
INVITATION_PERMISSIONS = ("add_invitation", "view_invitation", "change_invitation", "view_worker")


def mturk_worker(external_id: str = MTURK_ID) -> Worker:
    return get_or_create_workers(marketplace=Marketplace.MTURK, external_ids=[external_id])[external_id]


def one_token(**kwargs: Any) -> tuple[Invitation, str]:
    [(invitation, token)] = invite_workers(actor=SYSTEM, **kwargs) if kwargs else invite_workers(actor=SYSTEM, count=1)
    return invitation, token


def trail_text() -> str:
    seal_all_audit_events()
    return json.dumps(list(AuditEvent.objects.values()), default=str)


def staff_with(*codenames: str, username: str = "inviter") -> Any:
    user = UserFactory(username=username, is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="workforce", codename__in=codenames))
    return user


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- creating ---------------------------------------------------------------------------------------------


def test_fresh_invitations_store_only_a_digest_of_each_token() -> None:
    created = invite_workers(actor=SYSTEM, count=3, note="spring cohort")
    assert len(created) == 3
    tokens = [token for _, token in created]
    assert len(set(tokens)) == 3 and all(len(t) >= 43 for t in tokens)
    for invitation, token in created:
        invitation.refresh_from_db()
        assert invitation.token_digest == hashlib.sha256(token.encode()).hexdigest()
        assert invitation.worker is None and invitation.note == "spring cohort"
        assert get_invitation_state(invitation) == OPEN
    stored = json.dumps(list(Invitation.objects.values()), default=str)
    assert not any(token in stored for token in tokens)


def test_an_invitation_is_valid_for_the_configured_number_of_days(settings: Any) -> None:
    now = timezone.now()
    settings.WORKER_INVITATION_VALID_DAYS = 3
    invitation, _ = invite_workers(actor=SYSTEM, count=1, now=now)[0]
    assert invitation.expires_at == now + timedelta(days=3)
    del settings.WORKER_INVITATION_VALID_DAYS
    invitation, _ = invite_workers(actor=SYSTEM, count=1, now=now)[0]
    assert invitation.expires_at == now + timedelta(days=14)
    invitation, _ = invite_workers(actor=SYSTEM, count=1, now=now, valid_days=30)[0]
    assert invitation.expires_at == now + timedelta(days=30)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"count": 0},
        {"count": 201},
        {"count": 1, "valid_days": 0},
        {"count": 1, "valid_days": 91},
        {"count": 1, "note": "x" * 256},
    ],
)
def test_bad_requests_create_nothing(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvitationError) as refused:
        invite_workers(actor=SYSTEM, **kwargs)
    assert refused.value.code == REQUEST
    assert not Invitation.objects.exists()


def test_inviting_workers_and_a_count_at_once_is_refused() -> None:
    with pytest.raises(InvitationError, match="not both"):
        invite_workers(actor=SYSTEM, workers=[mturk_worker()], count=2)


def test_inviting_refuses_workers_that_cannot_join_naming_how_many_and_why() -> None:
    ok = mturk_worker("A1OK")
    linked = WorkerFactory(marketplace=Marketplace.MTURK, external_id="A1LINKED")
    internal = WorkerFactory(user=None, external_id="simulated-1")  # e.g. the simulator's workers
    blocked = mturk_worker("A1BLOCKED")
    Worker.objects.filter(pk=blocked.pk).update(is_blocked=True)
    with pytest.raises(InvitationError) as refused:
        invite_workers(actor=SYSTEM, workers=Worker.objects.filter(pk__in=[ok.pk, linked.pk, internal.pk, blocked.pk]))
    message = str(refused.value)
    assert message.startswith("3 of the 4 workers cannot be invited")
    assert "1 already have an account" in message
    assert "1 are internal-pool workers" in message
    assert "1 are blocked (unblock them first)" in message
    assert "No invitation was created" in message
    assert "A1" not in message  # workers are counted, never named by their marketplace id
    assert not Invitation.objects.exists()
    assert len(invite_workers(actor=SYSTEM, workers=[ok])) == 1


def test_an_erased_worker_cannot_be_invited() -> None:
    from workforce.services import pseudonymise_worker

    worker = pseudonymise_worker(worker=mturk_worker(), actor=SYSTEM)
    with pytest.raises(InvitationError, match="1 were erased on request"):
        invite_workers(actor=SYSTEM, workers=[worker])


def test_a_new_invitation_for_a_worker_revokes_the_earlier_unused_one() -> None:
    worker = mturk_worker()
    first, first_token = one_token(workers=[worker])
    _, second_token = one_token(workers=[worker])
    first.refresh_from_db()
    assert get_invitation_state(first) == REVOKED
    with pytest.raises(InvitationError) as refused:
        accept_invitation(token=first_token, user=UserFactory(), actor=SYSTEM)
    assert refused.value.code == REVOKED
    assert accept_invitation(token=second_token, user=UserFactory(), actor=SYSTEM).pk == worker.pk
    revoked = AuditEvent.objects.get(action="invitation.revoked")
    assert (revoked.object_id, revoked.reason) == (str(first.pk), "replaced by a new invitation")


# --- accepting --------------------------------------------------------------------------------------------


def test_accepting_a_fresh_invitation_registers_a_new_internal_worker() -> None:
    invitation, token = one_token()
    user = UserFactory()
    worker = accept_invitation(token=token, user=user, actor=joiner_actor(user))
    assert (worker.marketplace, worker.user_id) == (Marketplace.INTERNAL, user.pk)
    invitation.refresh_from_db()
    assert invitation.accepted_by_id == user.pk and invitation.accepted_at is not None
    assert get_invitation_state(invitation) == ACCEPTED


def test_accepting_a_worker_invitation_links_the_imported_worker_and_keeps_its_row() -> None:
    worker = mturk_worker()
    _, token = one_token(workers=[worker])
    user = UserFactory()
    joined = accept_invitation(token=token, user=user, actor=joiner_actor(user))
    assert joined.pk == worker.pk
    worker.refresh_from_db()
    assert (worker.marketplace, worker.external_id, worker.user_id) == (Marketplace.MTURK, MTURK_ID, user.pk)
    assert Worker.objects.count() == 1  # no second worker for the same person


def test_an_invitation_cannot_be_used_twice() -> None:
    _, token = one_token()
    accept_invitation(token=token, user=UserFactory(), actor=SYSTEM)
    other = UserFactory()
    with pytest.raises(InvitationError) as refused:
        accept_invitation(token=token, user=other, actor=SYSTEM)
    assert refused.value.code == USED
    assert not Worker.objects.filter(user=other).exists()
    assert AuditEvent.objects.filter(action="invitation.accepted").count() == 1


def test_the_claim_is_a_conditional_update_so_a_stale_read_still_cannot_use_a_link_twice(monkeypatch: Any) -> None:
    """On SQLite no row lock is taken: the conditional update is what lets only one use through."""
    from workforce import invitations as service

    invitation, token = one_token()
    # Another request accepted between this one's read and its claim.
    monkeypatch.setattr(service, "_lock_usable", lambda token, *, now: invitation)
    Invitation.objects.filter(pk=invitation.pk).update(accepted_at=timezone.now())
    with pytest.raises(InvitationError) as refused:
        accept_invitation(token=token, user=UserFactory(), actor=SYSTEM)
    assert refused.value.code == USED
    assert not Worker.objects.exists()


@pytest.mark.parametrize("state", [EXPIRED, REVOKED, UNKNOWN])
def test_expired_revoked_and_unknown_links_are_refused(state: str) -> None:
    invitation, token = one_token()
    if state == EXPIRED:
        Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    elif state == REVOKED:
        revoke_invitation(invitation=invitation, actor=SYSTEM)
    else:
        token = token[:-1] + ("A" if token[-1] != "A" else "B")
    user = UserFactory()
    with pytest.raises(InvitationError) as refused:
        accept_invitation(token=token, user=user, actor=SYSTEM)
    assert refused.value.code == state
    assert not Worker.objects.exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


@pytest.mark.parametrize("token", ["", "x" * 129, None, 42])
def test_tokens_that_are_not_ours_are_unknown(token: Any) -> None:
    with pytest.raises(InvitationError) as refused:
        accept_invitation(token=token, user=UserFactory(), actor=SYSTEM)
    assert refused.value.code == UNKNOWN


def test_an_account_that_already_works_in_the_pool_cannot_accept() -> None:
    worker = WorkerFactory()
    invitation, token = one_token()
    with pytest.raises(InvitationError, match="already works in the pool") as refused:
        accept_invitation(token=token, user=worker.user, actor=SYSTEM)
    assert refused.value.code == ACCOUNT
    invitation.refresh_from_db()
    assert invitation.accepted_at is None  # the link still works for someone else


@pytest.mark.parametrize("flags", [{"is_staff": True}, {"is_superuser": True}, {"is_active": False}])
def test_staff_and_inactive_accounts_cannot_accept(flags: dict[str, bool]) -> None:
    _, token = one_token()
    with pytest.raises(InvitationError) as refused:
        accept_invitation(token=token, user=UserFactory(**flags), actor=SYSTEM)
    assert refused.value.code == ACCOUNT
    assert not Worker.objects.exists()


def test_a_worker_blocked_after_the_invitation_cannot_accept_it() -> None:
    worker = mturk_worker()
    _, token = one_token(workers=[worker])
    Worker.objects.filter(pk=worker.pk).update(is_blocked=True)
    with pytest.raises(InvitationError) as refused:
        accept_invitation(token=token, user=UserFactory(), actor=SYSTEM)
    assert refused.value.code == BLOCKED
    worker.refresh_from_db()
    assert worker.user is None
    assert not Invitation.objects.filter(accepted_at__isnull=False).exists()  # rolled back with the refusal


# --- signing up on the link ---------------------------------------------------------------------------------


def test_joining_with_a_new_account_creates_the_user_and_the_worker() -> None:
    _, token = one_token(workers=[mturk_worker()])
    worker = join_with_new_account(token=token, username="newcomer", password="a long pass phrase 42")
    assert worker.user is not None and worker.user.username == "newcomer"
    assert worker.user.check_password("a long pass phrase 42")
    assert not worker.user.is_staff


@pytest.mark.parametrize(
    ("username", "password", "words"),
    [
        ("Taken", "a long pass phrase 42", "taken"),
        ("", "a long pass phrase 42", "user name"),
        ("newcomer", "password", "too common"),
        ("newcomer", "123", "too short"),
    ],
)
def test_joining_refuses_a_taken_name_or_a_weak_password_and_creates_nothing(
    username: str, password: str, words: str
) -> None:
    UserFactory(username="taken")
    invitation, token = one_token()
    with pytest.raises(InvitationError, match=words) as refused:
        join_with_new_account(token=token, username=username, password=password)
    assert refused.value.code == ACCOUNT
    assert not Worker.objects.exists()
    invitation.refresh_from_db()
    assert invitation.accepted_at is None


def test_a_bad_link_creates_no_account() -> None:
    invitation, token = one_token()
    revoke_invitation(invitation=invitation, actor=SYSTEM)
    with pytest.raises(InvitationError):
        join_with_new_account(token=token, username="newcomer", password="a long pass phrase 42")
    from django.contrib.auth import get_user_model

    assert not get_user_model().objects.filter(username="newcomer").exists()


# --- revoking ------------------------------------------------------------------------------------------------


def test_revoking_leaves_accepted_and_revoked_invitations_as_they_are() -> None:
    created = invite_workers(actor=SYSTEM, count=3)
    (used, used_token), (revoked, _), (open_one, _) = created
    accept_invitation(token=used_token, user=UserFactory(), actor=SYSTEM)
    revoke_invitation(invitation=revoked, actor=SYSTEM)
    assert revoke_invitations(invitations=[used, revoked, open_one], actor=SYSTEM) == 1
    with pytest.raises(InvitationError, match="already accepted or revoked"):
        revoke_invitation(invitation=used, actor=SYSTEM)
    states = {i.pk: get_invitation_state(i) for i in Invitation.objects.all()}
    assert states == {used.pk: ACCEPTED, revoked.pk: REVOKED, open_one.pk: REVOKED}


def test_the_state_filter_agrees_with_each_invitations_state() -> None:
    created = invite_workers(actor=SYSTEM, count=4)
    (accepted, token), (revoked, _), (expired, _), (open_one, _) = created
    accept_invitation(token=token, user=UserFactory(), actor=SYSTEM)
    revoke_invitation(invitation=revoked, actor=SYSTEM)
    Invitation.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    expected = {ACCEPTED: accepted.pk, REVOKED: revoked.pk, EXPIRED: expired.pk, OPEN: open_one.pk}
    for state, pk in expected.items():
        assert list(filter_invitations_by_state(Invitation.objects.all(), state).values_list("pk", flat=True)) == [pk]


# --- the audit trail ---------------------------------------------------------------------------------------


def test_the_trail_records_each_step_naming_invitations_workers_and_users_by_id_only() -> None:
    staff = UserFactory(username="opsperson", is_staff=True)
    worker = mturk_worker()
    first, first_token = one_token(workers=[worker])
    [(invitation, token)] = invite_workers(actor=Actor.from_user(staff), workers=[worker])
    assert invitation.created_by_id == staff.pk
    joined = join_with_new_account(token=token, username="Secret Person", password="a long pass phrase 42")
    user = joined.user
    assert user is not None
    seal_all_audit_events()
    events = list(AuditEvent.objects.order_by("pk"))
    assert [(e.action, e.object_type, e.object_id) for e in events] == [
        ("invitation.created", "invitation", str(first.pk)),
        ("invitation.revoked", "invitation", str(first.pk)),
        ("invitation.created", "invitation", str(invitation.pk)),
        ("user.created", "user", str(user.pk)),
        ("worker.user_linked", "worker", str(worker.pk)),
        ("invitation.accepted", "invitation", str(invitation.pk)),
    ]
    linked = events[4]
    assert (linked.before, linked.after) == ({"user": None}, {"user": user.pk, "invitation": invitation.pk})
    accepted = events[5]
    assert accepted.before == {"state": OPEN, "worker": worker.pk, "worker_user": None}
    assert accepted.after == {"state": ACCEPTED, "worker": worker.pk, "worker_user": user.pk, "user": user.pk}
    assert (accepted.actor_kind, accepted.actor_id, accepted.actor_label) == ("user", str(user.pk), f"user {user.pk}")
    assert events[2].actor_label == "opsperson"
    trail = trail_text()
    for secret in (token, first_token, hash_of(token), hash_of(first_token), MTURK_ID, "Secret Person"):
        assert secret not in trail
    assert verify_audit_chain() is None


def hash_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- the admin ---------------------------------------------------------------------------------------------


def test_creating_fresh_invitations_in_the_admin_shows_their_links_once() -> None:
    client = logged_in(staff_with(*INVITATION_PERMISSIONS))
    add = reverse("admin:workforce_invitation_add")
    assert client.get(add).status_code == 200
    response = client.post(add, {"count": 2, "valid_days": 7, "note": "two testers"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "shown only this once" in page
    assert "no-cache" in response["Cache-Control"] or "no-store" in response["Cache-Control"]
    invitations = list(Invitation.objects.order_by("pk"))
    assert len(invitations) == 2
    links = [line for line in response.context["links"].splitlines()]
    assert all(link.startswith("http://testserver/join/") for link in links)
    tokens = [link.rstrip("/").rsplit("/", 1)[1] for link in links]
    assert {hash_of(t) for t in tokens} == {i.token_digest for i in invitations}
    assert all(i.note == "two testers" and i.created_by is not None for i in invitations)
    # The list and the change page show the state, never a token or its digest.
    listing = client.get(reverse("admin:workforce_invitation_changelist")).content.decode()
    change = client.get(reverse("admin:workforce_invitation_change", args=[invitations[0].pk])).content.decode()
    for text in (listing, change):
        assert OPEN in text
        assert not any(t in text or hash_of(t) in text for t in tokens)


def test_the_add_form_refuses_bad_numbers() -> None:
    client = logged_in(staff_with(*INVITATION_PERMISSIONS))
    response = client.post(reverse("admin:workforce_invitation_add"), {"count": 0, "valid_days": 500})
    assert response.status_code == 200
    assert response.context["form"].errors.keys() == {"count", "valid_days"}
    assert not Invitation.objects.exists()


def test_the_worker_admin_invites_selected_imported_workers() -> None:
    workers = [mturk_worker("A1ONE"), mturk_worker("A1TWO")]
    client = logged_in(staff_with(*INVITATION_PERMISSIONS, "view_worker_identity"))
    response = client.post(
        reverse("admin:workforce_worker_changelist"),
        {"action": "invite_to_pool", "_selected_action": [w.pk for w in workers]},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "A1ONE" in page and "A1TWO" in page  # who each link is for (this user may see marketplace ids)
    assert set(Invitation.objects.values_list("worker_id", flat=True)) == {w.pk for w in workers}


def test_the_worker_admin_masks_marketplace_ids_on_the_links_page_without_the_permission() -> None:
    worker = mturk_worker()
    client = logged_in(staff_with(*INVITATION_PERMISSIONS))
    page = client.post(
        reverse("admin:workforce_worker_changelist"), {"action": "invite_to_pool", "_selected_action": [worker.pk]}
    ).content.decode()
    assert MTURK_ID not in page
    assert "masked-" in page


def test_the_worker_admin_says_why_it_cannot_invite() -> None:
    internal = WorkerFactory()
    client = logged_in(staff_with(*INVITATION_PERMISSIONS))
    response = client.post(
        reverse("admin:workforce_worker_changelist"),
        {"action": "invite_to_pool", "_selected_action": [internal.pk]},
        follow=True,
    )
    assert any("cannot be invited" in str(m) for m in response.context["messages"])
    assert not Invitation.objects.exists()


def test_the_revoke_action_revokes_open_invitations() -> None:
    created = invite_workers(actor=SYSTEM, count=2)
    client = logged_in(staff_with(*INVITATION_PERMISSIONS))
    response = client.post(
        reverse("admin:workforce_invitation_changelist"),
        {"action": "revoke_selected", "_selected_action": [i.pk for i, _ in created]},
        follow=True,
    )
    assert response.status_code == 200
    assert not filter_invitations_by_state(Invitation.objects.all(), OPEN).exists()
    assert AuditEvent.objects.filter(action="invitation.revoked").count() == 2


def test_staff_without_the_invitation_permissions_cannot_create_revoke_or_invite() -> None:
    worker = mturk_worker()
    invitation, _ = one_token()
    client = logged_in(staff_with("view_worker", "view_invitation", username="viewer"))
    assert client.get(reverse("admin:workforce_invitation_add")).status_code == 403
    assert client.post(reverse("admin:workforce_invitation_add"), {"count": 1, "valid_days": 1}).status_code == 403
    listing = client.get(reverse("admin:workforce_invitation_changelist"))
    assert listing.status_code == 200 and listing.context["action_form"] is None
    workers = client.get(reverse("admin:workforce_worker_changelist"))
    assert workers.context["action_form"] is None
    client.post(
        reverse("admin:workforce_worker_changelist"), {"action": "invite_to_pool", "_selected_action": [worker.pk]}
    )
    client.post(
        reverse("admin:workforce_invitation_changelist"),
        {"action": "revoke_selected", "_selected_action": [invitation.pk]},
    )
    assert Invitation.objects.count() == 1
    invitation.refresh_from_db()
    assert invitation.revoked_at is None
    assert client.get(reverse("admin:workforce_invitation_delete", args=[invitation.pk])).status_code == 403
