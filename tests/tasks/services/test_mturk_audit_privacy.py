"""MTurk WorkerIds are personal data and the audit trail is never rewritten: MTurk events name workers by our pk."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.stub import Stubber

from tasks.models import Hit, MTurkPageSubmission
from tasks.services.mturk_task_page import store_mturk_submission
from tasks.services.mturk_workers import notify_mturk_workers
from tests.marketplaces.mturk_standin import MTurkStandIn
from tests.tasks.services.mturk_helpers import ACTOR, published_mturk_job
from workforce.audit import seal_all_audit_events
from workforce.marketplaces.mturk import MTurkMarketplace
from workforce.models import AuditEvent, Worker

pytestmark = pytest.mark.django_db


def _mturk_worker(external_id: str) -> Worker:
    return Worker.objects.create(marketplace="mturk", external_id=external_id)


def _trail() -> str:
    """Every sealed event as stored, the way an export would carry it."""
    seal_all_audit_events()
    return json.dumps(list(AuditEvent.objects.order_by("id").values()), default=str)


def _events(action: str) -> list[AuditEvent]:
    seal_all_audit_events()
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def _submit(mturk: MTurkMarketplace, worker_id: str) -> MTurkPageSubmission:
    hit = Hit.objects.get(job=published_mturk_job(mturk, items=1))
    store_mturk_submission(
        hit=hit, assignment_id="3ASSIGNMENT1", worker_id=worker_id, fields={"place:1": "pos"}, actor=ACTOR
    )
    return MTurkPageSubmission.objects.get(assignment_id="3ASSIGNMENT1")


def test_a_page_submission_names_a_known_worker_by_our_id_and_never_by_the_mturk_id(mturk: MTurkMarketplace) -> None:
    worker = _mturk_worker("AKNOWNPAGEWORKER1")
    claim = _submit(mturk, "AKNOWNPAGEWORKER1")
    [event] = _events("mturk.page_submission")
    assert event.object_id == str(claim.pk)
    assert event.after["worker"] == worker.pk
    assert event.after["assignment"] == "3ASSIGNMENT1" and event.after["items"] == 1
    assert claim.worker_id == "AKNOWNPAGEWORKER1"  # the claim row (not the trail) keeps the WorkerId
    assert "AKNOWNPAGEWORKER1" not in _trail()


def test_a_page_submission_of_a_worker_we_have_no_row_for_records_none_and_creates_no_row(
    mturk: MTurkMarketplace,
) -> None:
    _submit(mturk, "ANEWPAGEWORKER2")
    [event] = _events("mturk.page_submission")
    assert event.after["worker"] is None
    # the page's ids are whatever its query string said: no Worker row until MTurk lists the assignment
    assert not Worker.objects.filter(external_id="ANEWPAGEWORKER2").exists()
    assert "ANEWPAGEWORKER2" not in _trail()


def test_notifying_workers_audits_each_of_them_by_our_id_with_the_batch_size(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    workers = [_mturk_worker(f"ANOTIFYWORKER{n:02d}") for n in range(8)]
    internal = Worker.objects.create(marketplace="internal", external_id="user-internal")
    failed = notify_mturk_workers(
        workers=[*workers, internal], subject="Hi", message="New batch", actor=ACTOR, connector=mturk
    )
    assert failed == {}
    assert len(standin.state.notified) == 8
    events = _events("mturk.workers_notified")
    assert [(e.object_type, e.object_id) for e in events] == [("worker", str(w.pk)) for w in workers]
    assert len({e.after["batch"] for e in events}) == 1
    assert all(len(e.object_id) <= 64 for e in events)
    assert [e.after["delivered"] for e in events] == [True] * 8
    assert {e.after["workers"] for e in events} == {8}
    assert {e.after["subject"] for e in events} == {"Hi"}
    assert "ANOTIFYWORKER" not in _trail()


def test_a_failed_notification_says_which_of_our_workers_failed_and_why_without_the_mturk_id(
    stubbed: MTurkMarketplace,
) -> None:
    # one id inside another: the longer one is replaced whole, so no part of it is left in the message
    reached = _mturk_worker("AFAILWORKER")
    opted_out = _mturk_worker("AFAILWORKER7")
    reply: dict[str, Any] = {
        "NotifyWorkersFailureStatuses": [
            {
                "NotifyWorkersFailureCode": "HardFailure",
                "NotifyWorkersFailureMessage": "Worker AFAILWORKER7 has opted out of requester e-mail.",
                "WorkerId": "AFAILWORKER7",
            }
        ]
    }
    with Stubber(stubbed.caller.client) as stub:
        stub.add_response("notify_workers", reply)
        failed = notify_mturk_workers(
            workers=[reached, opted_out], subject="Hi", message="New batch", actor=ACTOR, connector=stubbed
        )
    # the caller still learns which MTurk worker failed; only the trail is kept free of WorkerIds
    assert failed == {"AFAILWORKER7": "Worker AFAILWORKER7 has opted out of requester e-mail."}
    after = {e.object_id: e.after for e in _events("mturk.workers_notified")}
    assert after[str(reached.pk)]["delivered"] is True and "failure" not in after[str(reached.pk)]
    assert after[str(opted_out.pk)]["delivered"] is False
    assert after[str(opted_out.pk)]["failure"] == f"Worker worker {opted_out.pk} has opted out of requester e-mail."
    assert {a["workers"] for a in after.values()} == {2}
    assert "AFAILWORKER" not in _trail()
