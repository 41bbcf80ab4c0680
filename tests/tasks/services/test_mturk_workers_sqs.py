"""MTurk qualifications, blocks, messages (stand-in) and the SQS notification consumer (Stubber on sqs)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from qualification.services import create_test
from qualification.specs import OptionSpec, QuestionSpec
from tasks.models import Assignment, Hit, MTurkNotification, WorkerJobScore
from tasks.services.errors import ServiceError
from tasks.services.mturk_collect import consume_mturk_notifications
from tasks.services.mturk_publishing import publish_mturk_hits
from tasks.services.mturk_workers import (
    ensure_mturk_test_qualification,
    notify_mturk_workers,
    push_mturk_scores,
    soft_block_mturk_worker,
)
from tasks.services.publishing import publish_job
from tests.factories import WorkerFactory
from tests.marketplaces.mturk_standin import MTurkStandIn
from tests.tasks.services.mturk_helpers import ACTOR, mturk_job, published_mturk_job
from workforce.marketplaces.mturk import MTurkMarketplace
from workforce.models import Worker

pytestmark = pytest.mark.django_db
QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/mturk"


def _test() -> object:
    return create_test(
        actor=ACTOR,
        name="Sentiment screening",
        questions=[
            QuestionSpec(
                identifier="q1",
                prompt="How does 'I love it' read?",
                options=(OptionSpec("pos", "Positive"), OptionSpec("neg", "Negative")),
                accepted=("pos",),
            )
        ],
    )


def test_our_test_becomes_a_qualification_type_used_by_the_job(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    test = _test()
    created = ensure_mturk_test_qualification(test=test, actor=ACTOR, connector=mturk)  # type: ignore[arg-type]
    again = ensure_mturk_test_qualification(test=test, actor=ACTOR, connector=mturk)  # type: ignore[arg-type]
    assert created.pk == again.pk and len(standin.state.qualification_types) == 1
    remote = standin.state.qualification_types[created.type_id]
    assert "<QuestionForm" in remote["Test"] and "<AnswerKey" in remote["AnswerKey"]
    assert remote["QualificationTypeStatus"] == "Active"
    job = publish_job(job=mturk_job(1, requirements=[{"kind": "test", "test": test.pk, "min_score": 80}]), actor=ACTOR)  # type: ignore[attr-defined]
    publish_mturk_hits(job=job, actor=ACTOR, connector=mturk)
    (hit_type,) = standin.state.hit_types.values()
    assert {
        "QualificationTypeId": created.type_id,
        "Comparator": "GreaterThanOrEqualTo",
        "IntegerValues": [80],
        "ActionsGuarded": "DiscoverPreviewAndAccept",
    } in hit_type["QualificationRequirements"]


def test_a_job_requiring_a_test_not_on_mturk_is_refused(mturk: MTurkMarketplace) -> None:
    test = _test()
    job = publish_job(job=mturk_job(1, requirements=[{"kind": "test", "test": test.pk, "min_score": 80}]), actor=ACTOR)  # type: ignore[attr-defined]
    with pytest.raises(ServiceError, match="not on MTurk yet"):
        publish_mturk_hits(job=job, actor=ACTOR, connector=mturk)


def test_scores_are_pushed_and_blocks_are_soft(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    job = published_mturk_job(mturk, 1)
    worker = WorkerFactory(marketplace="mturk", user=None, external_id="AWORKER7")
    from django.utils import timezone

    WorkerJobScore.objects.create(job=job, worker=worker, accuracy=0.874, updated_at=timezone.now())
    assert push_mturk_scores(job=job, actor=ACTOR, connector=mturk) == 1
    block = soft_block_mturk_worker(worker=worker, reason="spam", actor=ACTOR, connector=mturk)
    values = {type_id: v for (type_id, w), v in standin.state.worker_qualifications.items() if w == "AWORKER7"}
    assert sorted(values.values()) == [1, 87] and block.type_id in values
    assert standin.state.calls.get("CreateWorkerBlock") is None
    # Jobs that say "not_blocked" keep the block's holders out of their HIT type.
    job2 = publish_job(job=mturk_job(1, requirements=[{"kind": "not_blocked"}]), actor=ACTOR)
    publish_mturk_hits(job=job2, actor=ACTOR, connector=mturk)
    assert any(
        r
        == {
            "QualificationTypeId": block.type_id,
            "Comparator": "DoesNotExist",
            "ActionsGuarded": "DiscoverPreviewAndAccept",
        }
        for t in standin.state.hit_types.values()
        for r in t["QualificationRequirements"]
    )


def test_notify_reaches_mturk_workers_only(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    workers = [WorkerFactory(marketplace="mturk", user=None, external_id=f"AW{n}") for n in range(3)]
    assert notify_mturk_workers(workers=workers, subject="Hi", message="New batch", actor=ACTOR, connector=mturk) == {}
    assert sorted(w for w, _ in standin.state.notified) == ["AW0", "AW1", "AW2"]
    with pytest.raises(ServiceError):
        notify_mturk_workers(workers=[WorkerFactory()], subject="Hi", message="x", actor=ACTOR, connector=mturk)


def _message(doc_id: str, assignment: str, hit: str, receipt: str) -> dict[str, str]:
    body = {
        "EventDocId": doc_id,
        "EventDocVersion": "2014-08-15",
        "SourceAccount": "123456789012",
        "CustomerId": "A1REQUESTER",
        "Events": [
            {
                "EventType": "AssignmentSubmitted",
                "EventTimestamp": "2026-11-29T06:00:00Z",
                "HITId": hit,
                "AssignmentId": assignment,
                "HITTypeId": "T1",
            }
        ],
    }
    return {"MessageId": doc_id + receipt, "ReceiptHandle": receipt, "Body": json.dumps(body)}


def test_sqs_notifications_are_recorded_once_per_event_doc(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    job = published_mturk_job(mturk, 1)
    hit = Hit.objects.get(job=job)
    assignment = standin.state.accept(str(hit.external_id), "AWORKER1")
    standin.state.external_submit([("assignmentId", assignment), ("item:t0", "pos")])
    sqs = boto3.client("sqs", region_name="us-east-1")
    receive = {"QueueUrl": QUEUE, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0}
    with Stubber(sqs) as stub:
        stub.add_response(
            "receive_message",
            {
                "Messages": [
                    _message("doc-1", assignment, str(hit.external_id), "r1"),
                    {"MessageId": "x", "ReceiptHandle": "r0", "Body": "not json"},
                ]
            },
            receive,
        )
        stub.add_response("delete_message", {}, {"QueueUrl": QUEUE, "ReceiptHandle": "r1"})
        stub.add_response("delete_message", {}, {"QueueUrl": QUEUE, "ReceiptHandle": "r0"})
        stub.add_response(
            "receive_message", {"Messages": [_message("doc-1", assignment, str(hit.external_id), "r2")]}, receive
        )
        stub.add_response("delete_message", {}, {"QueueUrl": QUEUE, "ReceiptHandle": "r2"})
        first = consume_mturk_notifications(sqs=sqs, queue_url=QUEUE, actor=ACTOR, connector=mturk)
        second = consume_mturk_notifications(sqs=sqs, queue_url=QUEUE, actor=ACTOR, connector=mturk)
        stub.assert_no_pending_responses()
    assert (first.assignments_created, first.ignored) == (1, 1)
    assert (second.duplicates, second.assignments_created) == (1, 0)
    assert standin.state.calls["GetAssignment"] == 1
    assert Assignment.objects.get(external_id=assignment).answers.get().value == "pos"
    assert MTurkNotification.objects.filter(event_doc_id="doc-1").count() == 1
    assert Worker.objects.filter(marketplace="mturk", external_id="AWORKER1").exists()


def test_a_failed_fetch_leaves_the_message_on_the_queue(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    sqs = boto3.client("sqs", region_name="us-east-1")
    with Stubber(sqs) as stub:
        stub.add_response("receive_message", {"Messages": [_message("doc-2", "3A" + "0" * 28, "3" + "0" * 29, "r9")]})
        with pytest.raises(Exception, match="does not exist"):
            consume_mturk_notifications(sqs=sqs, queue_url=QUEUE, actor=ACTOR, connector=mturk)
        stub.assert_no_pending_responses()  # no delete_message was expected, none was made
    assert not MTurkNotification.objects.exists()
