"""Worker ids are personal data: masked without the permission; erasable while ledger and audit stay valid."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from tasks.models import Answer, AssignmentState, CostKind
from tasks.roles import FINANCE, OPS_MANAGER, REVIEWER
from tasks.services.collection import submit_assignment
from tasks.services.ledger import record_cost
from tasks.services.pool import assign_next_hit
from tests.factories import UserFactory, WorkerFactory
from workforce.audit import verify_audit_chain
from workforce.models import AuditEvent, Marketplace, Worker
from workforce.privacy import mask_worker_id

pytestmark = pytest.mark.django_db


def _staff(group: str) -> Any:
    user = UserFactory(username=group.lower().replace(" ", "-"), is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.mark.parametrize(("group", "unmasked"), [(REVIEWER, False), (OPS_MANAGER, True)])
def test_the_worker_admin_masks_marketplace_ids_without_the_permission(group: str, unmasked: bool) -> None:
    WorkerFactory(marketplace=Marketplace.MTURK, external_id="A2SECRETWORKER", user=None, display_name="")
    client = Client()
    client.force_login(_staff(group))
    page = client.get(reverse("admin:workforce_worker_changelist")).content.decode()
    assert ("A2SECRETWORKER" in page) is unmasked
    assert (mask_worker_id("A2SECRETWORKER") in page) is not unmasked


def test_finance_may_see_worker_ids_for_payment() -> None:
    assert _staff(FINANCE).has_perm("workforce.view_worker_identity")
    assert not _staff(REVIEWER).has_perm("workforce.view_worker_identity")


def test_masking_is_a_stable_pseudonym() -> None:
    assert mask_worker_id("A1") == mask_worker_id("A1") != mask_worker_id("A2")
    assert "A1" not in mask_worker_id("A1")


def test_pseudonymising_a_worker_keeps_work_ledger_and_audit_chain_valid(
    make_published_job: Any, make_worker: Any, capsys: Any
) -> None:
    job = make_published_job(items=1, redundancy=1)
    worker = make_worker()
    user = worker.user
    lease = assign_next_hit(job=job, worker=worker)
    submit_assignment(assignment=lease, worker=worker, answers={lease.hit.items.get().pk: "pos"})
    record_cost(
        job=job,
        kind=CostKind.REWARD,
        amount=Decimal("0.05"),
        marketplace=job.marketplace,
        assignment=lease,
        worker=worker,
        idempotency_key=f"r-{lease.pk}",
    )
    old_username = user.username
    call_command("pseudonymise_worker", str(worker.pk), "--reason", "GDPR request 42")
    assert f"pseudonymised as erased-{worker.pk}" in capsys.readouterr().out
    worker.refresh_from_db()
    user.refresh_from_db()
    assert (worker.external_id, worker.display_name) == (f"erased-{worker.pk}", f"erased worker {worker.pk}")
    assert user.username == f"erased-user-{user.pk}" and not user.is_active and not user.has_usable_password()
    assert Answer.objects.filter(worker=worker).count() == 1
    assert worker.cost_entries.count() == 1
    lease.refresh_from_db()
    assert lease.state == AssignmentState.SUBMITTED
    call_command("audit_verify")  # exit 0: nothing sealed was rewritten
    assert verify_audit_chain() is None
    event = AuditEvent.objects.get(action="worker.pseudonymised")
    assert event.reason == "GDPR request 42" and event.object_id == str(worker.pk)
    # Neither the new event nor the worker's own hot-path events carry the old user name.
    for e in AuditEvent.objects.filter(actor_kind="worker"):
        assert old_username not in f"{e.actor_label}{e.before}{e.after}"
    assert old_username not in f"{event.before}{event.after}"
    client = Client()
    assert not client.login(username=old_username, password="pw-for-tests")


def test_pseudonymising_refuses_unknown_workers_and_repeats() -> None:
    worker = WorkerFactory(marketplace=Marketplace.MTURK, external_id="AXYZ", user=None)
    call_command("pseudonymise_worker", "mturk:AXYZ")
    refusals = (("mturk:AXYZ", "No worker matches"), ("nobody", "Name the worker"), (str(worker.pk), "already"))
    for ref, message in refusals:
        with pytest.raises(CommandError, match=message) as info:
            call_command("pseudonymise_worker", ref)
        assert info.value.returncode == 2
    assert Worker.objects.get(pk=worker.pk).external_id == f"erased-{worker.pk}"
