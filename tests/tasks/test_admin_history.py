"""History one click away for items and assignments; lifting blocks and exporting the trail are audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from tasks.models import ConsensusLabel, Job, JobBlock
from tasks.services.blocks import lift_job_block
from tasks.services.collection import submit_assignment
from tasks.services.errors import ServiceError
from tasks.services.pool import assign_next_hit
from tasks.services.quality import block_worker
from tests.conftest import SYSTEM
from workforce.models import AuditEvent, Worker

pytestmark = pytest.mark.django_db


def _history(client: Client, url_name: str, pk: int) -> list[AuditEvent]:
    response = client.get(reverse(url_name, args=[pk]), follow=True)
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def test_the_history_button_of_an_assignment_shows_its_accept_and_submit(
    ops_client: Client, make_published_job: Callable[..., Job], make_worker: Callable[..., Worker]
) -> None:
    job = make_published_job(items=2)
    worker = make_worker()
    lease = assign_next_hit(job=job, worker=worker)
    other = assign_next_hit(job=job, worker=make_worker())
    submit_assignment(assignment=lease, worker=worker, answers={lease.hit.items.get().pk: "pos"})
    # The admin list seals the pending hot-path events itself: no beat needed to see them.
    events = _history(ops_client, "admin:tasks_assignment_history", lease.pk)
    assert [e.action for e in sorted(events, key=lambda e: e.pk)] == ["assignment.accepted", "assignment.submitted"]
    assert {e.object_id for e in _history(ops_client, "admin:tasks_assignment_history", other.pk)} == {str(other.pk)}


def test_the_history_button_of_an_item_shows_it_became_gold(
    ops_client: Client, make_published_job: Callable[..., Job]
) -> None:
    from tasks.services.gold import promote_consensus_to_gold

    job = make_published_job(items=2)
    item, other = job.items.order_by("id")
    ConsensusLabel.objects.create(job=job, item=item, value="pos", confidence=0.97, method="mv", answers_count=3)
    assert promote_consensus_to_gold(job=job, item_ids=[item.pk, other.pk], actor=SYSTEM) == 1
    events = _history(ops_client, "admin:tasks_item_history", item.pk)
    assert [(e.action, e.after) for e in events] == [
        ("item.gold_set", {"is_gold": True, "gold_answer": "pos", "consensus_confidence": 0.97})
    ]
    assert _history(ops_client, "admin:tasks_item_history", other.pk) == []


def test_lifting_a_block_is_audited_and_lets_the_worker_back(
    ops_client: Client, make_published_job: Callable[..., Job], make_worker: Callable[..., Worker]
) -> None:
    job = make_published_job(items=2)
    worker = make_worker()
    block = block_worker(job=job, worker=worker, actor=SYSTEM, reason="chance accuracy")
    assert block is not None
    response = ops_client.post(
        reverse("admin:tasks_jobblock_changelist"), {"action": "lift_selected", "_selected_action": [block.pk]}
    )
    assert response.status_code == 302
    block.refresh_from_db()
    assert block.lifted_at is not None
    event = AuditEvent.objects.get(action="worker.unblocked_from_job")
    assert (event.object_id, event.actor_label, event.reason) == (str(worker.pk), "ops", "Lifted in the admin.")
    assert event.after == {"job": job.pk, "blocked": False}
    assert assign_next_hit(job=job, worker=worker).worker_id == worker.pk
    with pytest.raises(ServiceError, match="already lifted"):
        lift_job_block(block=block, actor=SYSTEM, reason="again")
    assert JobBlock.objects.filter(lifted_at__isnull=True).count() == 0


def test_reviewers_cannot_lift_blocks(
    reviewer: Any, login_client: Callable[[Any], Client], make_published_job: Callable[..., Job], make_worker: Any
) -> None:
    job = make_published_job(items=1)
    block = block_worker(job=job, worker=make_worker(), actor=SYSTEM, reason="x")
    assert block is not None
    login_client(reviewer).post(
        reverse("admin:tasks_jobblock_changelist"), {"action": "lift_selected", "_selected_action": [block.pk]}
    )
    block.refresh_from_db()
    assert block.lifted_at is None


def test_exporting_the_audit_trail_is_itself_audited(tmp_path) -> None:
    call_command("audit_export", "--since", "2000-01-01", "--output", str(tmp_path / "a.jsonl"))
    event = AuditEvent.objects.get(action="audit.exported")
    assert event.after["format"] == "jsonl" and event.after["events"] == 0
    assert event.actor_label.startswith("audit_export")
