"""Two requests using one invitation link at the same moment on PostgreSQL: exactly one gets through."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.conf import settings
from django.db import connections

from tests.conftest import SYSTEM
from tests.factories import UserFactory
from workforce.invitations import USED, InvitationError, accept_invitation, invite_workers, joiner_actor
from workforce.models import AuditEvent, Invitation, Marketplace, Worker
from workforce.services import get_or_create_workers

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs PostgreSQL; set DATABASE_URL=postgres://..."),
]
TRIES = 6


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("for_worker", [False, True])
def test_one_link_used_at_once_by_several_people_lets_exactly_one_in(for_worker: bool) -> None:
    workers = get_or_create_workers(marketplace=Marketplace.MTURK, external_ids=["A1RACE"]) if for_worker else {}
    [(invitation, token)] = invite_workers(
        actor=SYSTEM, **({"workers": list(workers.values())} if workers else {"count": 1})
    )
    users = [UserFactory() for _ in range(TRIES)]
    barrier = threading.Barrier(TRIES)
    joined: list[int] = []
    refused: list[str] = []
    errors: list[BaseException] = []

    def use(user: Any) -> None:
        try:
            barrier.wait()
            joined.append(accept_invitation(token=token, user=user, actor=joiner_actor(user)).pk)
        except InvitationError as exc:
            refused.append(exc.code)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=use, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(joined) == 1 and refused == [USED] * (TRIES - 1)
    invitation.refresh_from_db()
    assert Worker.objects.filter(user__isnull=False).count() == 1
    assert Worker.objects.get(pk=joined[0]).user_id == invitation.accepted_by_id
    assert AuditEvent.objects.filter(action="invitation.accepted").count() == 1


@pytest.mark.django_db(transaction=True)
def test_one_account_using_two_links_at_once_gets_one_worker() -> None:
    created = invite_workers(actor=SYSTEM, count=2)
    user = UserFactory()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def use(token: str) -> None:
        try:
            barrier.wait()
            accept_invitation(token=token, user=user, actor=joiner_actor(user))
            outcomes.append("joined")
        except InvitationError as exc:
            outcomes.append(exc.code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=use, args=(token,)) for _, token in created]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["account", "joined"]
    assert Worker.objects.filter(user=user).count() == 1
    assert Invitation.objects.filter(accepted_at__isnull=False).count() == 1
