"""The MTurk connector's calls, shape by shape (botocore Stubber on a real client), its error mapping,
and every parameter it sends checked against boto3's own service model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from tests.workforce.marketplaces.service_model import check_all, record_params, violations
from workforce.marketplaces.base import HitSpec, MarketplaceError
from workforce.marketplaces.mturk import AlreadyDone, MTurkMarketplace, request_token
from workforce.marketplaces.mturk.config import MASTERS_SANDBOX, NUMBER_HITS_APPROVED, PERCENT_APPROVED
from workforce.marketplaces.mturk.documents import external_question
from workforce.marketplaces.mturk.ratelimit import LocalBucket
from workforce.marketplaces.mturk.requirements import Requirements, build_requirements

HIT_UUID = "6f1c2f8e-8a8b-4d0c-9d55-0f7b0a3c1e11"
HIT_ID = "3X" + "A" * 28
TYPE_ID = "3T" + "B" * 28


def _spec(**changes: Any) -> HitSpec:
    fields: dict[str, Any] = {
        "hit_id": HIT_UUID,
        "title": "Label a tweet",
        "description": "Is this tweet positive, negative or neutral?",
        "reward": Decimal("0.05"),
        "currency": "USD",
        "max_assignments": 3,
        "assignment_duration": timedelta(minutes=10),
        "lifetime": timedelta(days=3),
        "auto_approval_delay": timedelta(days=2),
        "keywords": ("text", "sentiment"),
        "question": external_question("https://crowd.example.org/mturk/task/"),
        "qualification_requirements": tuple(
            build_requirements(
                Requirements(masters=True, min_percent_approved=95, min_hits_approved=500, locales=("US", "CA-ON")),
                masters_id=MASTERS_SANDBOX,
            )
        ),
    }
    fields.update(changes)
    return HitSpec(**fields)


def _hit(**changes: Any) -> dict[str, Any]:
    return {
        "HITId": HIT_ID,
        "HITTypeId": TYPE_ID,
        "HITGroupId": "3G" + "C" * 28,
        "RequesterAnnotation": HIT_UUID,
        "MaxAssignments": 3,
        "Reward": "0.05",
        "HITStatus": "Assignable",
        "Expiration": datetime(2026, 12, 1, tzinfo=UTC),
        **changes,
    }


def test_publish_sends_a_hit_type_then_the_hit_with_token_and_annotation(stubbed: MTurkMarketplace) -> None:
    seen = record_params(stubbed.caller.client)
    with Stubber(stubbed.caller.client) as stub:
        stub.add_response(
            "create_hit_type",
            {"HITTypeId": TYPE_ID},
            {
                "AutoApprovalDelayInSeconds": 172800,
                "AssignmentDurationInSeconds": 600,
                "Reward": "0.05",
                "Title": "Label a tweet",
                "Keywords": "text, sentiment",
                "Description": "Is this tweet positive, negative or neutral?",
                "QualificationRequirements": [
                    {"QualificationTypeId": MASTERS_SANDBOX, "Comparator": "Exists", "ActionsGuarded": ANY},
                    {
                        "QualificationTypeId": PERCENT_APPROVED,
                        "Comparator": "GreaterThanOrEqualTo",
                        "IntegerValues": [95],
                        "ActionsGuarded": "DiscoverPreviewAndAccept",
                    },
                    {
                        "QualificationTypeId": NUMBER_HITS_APPROVED,
                        "Comparator": "GreaterThanOrEqualTo",
                        "IntegerValues": [500],
                        "ActionsGuarded": "DiscoverPreviewAndAccept",
                    },
                    {
                        "QualificationTypeId": "00000000000000000071",
                        "Comparator": "In",
                        "LocaleValues": [{"Country": "US"}, {"Country": "CA", "Subdivision": "ON"}],
                        "ActionsGuarded": "DiscoverPreviewAndAccept",
                    },
                ],
            },
        )
        stub.add_response(
            "create_hit_with_hit_type",
            {"HIT": _hit()},
            {
                "HITTypeId": TYPE_ID,
                "MaxAssignments": 3,
                "LifetimeInSeconds": 259200,
                "Question": ANY,
                "RequesterAnnotation": HIT_UUID,
                "UniqueRequestToken": "hit:" + HIT_UUID.replace("-", ""),
            },
        )
        published = stubbed.publish(_spec())
        stub.assert_no_pending_responses()
    assert (published.external_id, published.adopted) == (HIT_ID, False)
    assert check_all(stubbed.caller.client, seen) == []
    assert "<ExternalURL>https://crowd.example.org/mturk/task/</ExternalURL>" in seen[1][1]["Question"]


def test_hit_already_exists_is_success_and_the_hit_is_adopted(stubbed: MTurkMarketplace) -> None:
    with Stubber(stubbed.caller.client) as stub:
        stub.add_response("create_hit_type", {"HITTypeId": TYPE_ID})
        stub.add_client_error(
            "create_hit_with_hit_type",
            service_error_code="RequestError",
            service_message=f"The HIT with ID `{HIT_ID}` already exists.",
            http_status_code=400,
            modeled_fields={"TurkErrorCode": "AWS.MechanicalTurk.HitAlreadyExists"},
        )
        stub.add_response("get_hit", {"HIT": _hit()}, {"HITId": HIT_ID})
        published = stubbed.publish(_spec())
        stub.assert_no_pending_responses()
    assert (published.external_id, published.adopted) == (HIT_ID, True)


def test_without_a_hit_id_in_the_reply_the_hit_is_found_by_its_annotation(stubbed: MTurkMarketplace) -> None:
    with Stubber(stubbed.caller.client) as stub:
        stub.add_response("create_hit_type", {"HITTypeId": TYPE_ID})
        stub.add_client_error(
            "create_hit_with_hit_type",
            service_error_code="RequestError",
            service_message="Duplicate UniqueRequestToken.",
            modeled_fields={"TurkErrorCode": "AWS.MechanicalTurk.HitAlreadyExists"},
        )
        other = _hit(HITId="3Z" + "D" * 28, RequesterAnnotation="someone else")
        stub.add_response("list_hits", {"HITs": [other], "NextToken": "p2"}, {"MaxResults": 100})
        stub.add_response("list_hits", {"HITs": [_hit()]}, {"MaxResults": 100, "NextToken": "p2"})
        published = stubbed.publish(_spec())
    assert (published.external_id, published.adopted) == (HIT_ID, True)


@pytest.mark.parametrize(
    ("code", "status", "permanent"),
    [("ServiceFault", 500, False), ("ThrottlingException", 400, False), ("RequestError", 400, True)],
)
def test_errors_map_to_temporary_or_permanent(
    stubbed: MTurkMarketplace, code: str, status: int, permanent: bool
) -> None:
    with Stubber(stubbed.caller.client) as stub:
        stub.add_client_error("get_account_balance", service_error_code=code, http_status_code=status)
        with pytest.raises(MarketplaceError) as raised:
            stubbed.get_balance()
    assert raised.value.permanent is permanent
    assert not isinstance(raised.value, AlreadyDone)


def test_list_assignments_follows_every_page_and_parses_answers(stubbed: MTurkMarketplace) -> None:
    answer = (
        '<QuestionFormAnswers xmlns="http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/'
        'QuestionFormAnswers.xsd"><Answer><QuestionIdentifier>item:t1</QuestionIdentifier><FreeText>pos</FreeText>'
        "</Answer><Answer><QuestionIdentifier>tags</QuestionIdentifier><SelectionIdentifier>a</SelectionIdentifier>"
        "<SelectionIdentifier>b</SelectionIdentifier></Answer></QuestionFormAnswers>"
    )
    row = {
        "AssignmentId": "3A" + "E" * 28,
        "WorkerId": "AWORKER1",
        "HITId": HIT_ID,
        "AssignmentStatus": "Submitted",
        "Answer": answer,
        "SubmitTime": datetime(2026, 11, 1, tzinfo=UTC),
        "AutoApprovalTime": datetime(2026, 11, 4, tzinfo=UTC),
    }
    statuses = ["Submitted", "Approved", "Rejected"]
    with Stubber(stubbed.caller.client) as stub:
        stub.add_response(
            "list_assignments_for_hit",
            {"Assignments": [row], "NextToken": "n"},
            {"HITId": HIT_ID, "AssignmentStatuses": statuses, "MaxResults": 100},
        )
        stub.add_response(
            "list_assignments_for_hit",
            {"Assignments": [{**row, "AssignmentId": "3A" + "F" * 28, "AssignmentStatus": "Approved"}]},
            {"HITId": HIT_ID, "AssignmentStatuses": statuses, "MaxResults": 100, "NextToken": "n"},
        )
        records = stubbed.list_assignments(HIT_ID)
    assert [r.status for r in records] == ["submitted", "approved"]
    assert records[0].answers == {"item:t1": "pos", "tags": ["a", "b"]}
    assert records[0].auto_approval_at == datetime(2026, 11, 4, tzinfo=UTC)


def test_review_pay_and_worker_calls_have_mturk_shapes(stubbed: MTurkMarketplace) -> None:
    client = stubbed.caller.client
    seen = record_params(client)
    assignment = "3A" + "E" * 28
    token = request_token("bonus", "job-1:assignment-9:accuracy")
    with Stubber(client) as stub:
        stub.add_response("approve_assignment", {}, {"AssignmentId": assignment, "RequesterFeedback": "Thanks"})
        stub.add_response("reject_assignment", {}, {"AssignmentId": assignment, "RequesterFeedback": "Missed gold"})
        stub.add_response(
            "approve_assignment", {}, {"AssignmentId": assignment, "OverrideRejection": True, "RequesterFeedback": "x"}
        )
        stub.add_response(
            "send_bonus",
            {},
            {
                "WorkerId": "AWORKER1",
                "AssignmentId": assignment,
                "BonusAmount": "0.25",
                "Reason": "Accurate work",
                "UniqueRequestToken": token,
            },
        )
        stub.add_response(
            "create_additional_assignments_for_hit",
            {},
            {"HITId": HIT_ID, "NumberOfAdditionalAssignments": 2, "UniqueRequestToken": "extend:x:5"},
        )
        stub.add_response(
            "update_expiration_for_hit", {}, {"HITId": HIT_ID, "ExpireAt": datetime(2015, 1, 1, tzinfo=UTC)}
        )
        stub.add_response("delete_hit", {}, {"HITId": HIT_ID})
        stub.add_response(
            "associate_qualification_with_worker",
            {},
            {
                "QualificationTypeId": "3Q" + "A" * 28,
                "WorkerId": "AWORKER1",
                "IntegerValue": 87,
                "SendNotification": False,
            },
        )
        stub.add_response(
            "notify_workers",
            {"NotifyWorkersFailureStatuses": [{"WorkerId": "AWORKER2", "NotifyWorkersFailureMessage": "gone"}]},
            {"Subject": "New work", "MessageText": "More tweets tomorrow.", "WorkerIds": ["AWORKER1", "AWORKER2"]},
        )
        stubbed.approve(assignment, feedback="Thanks")
        stubbed.reject(assignment, feedback="Missed gold")
        stubbed.override_rejection(assignment, feedback="x")
        assert stubbed.send_bonus(
            worker_id="AWORKER1", assignment_id=assignment, amount=Decimal("0.25"), reason="Accurate work", token=token
        )
        assert stubbed.create_additional_assignments(HIT_ID, count=2, token="extend:x:5")
        stubbed.expire(HIT_ID)
        stubbed.delete_hit(HIT_ID)
        stubbed.associate_qualification(type_id="3Q" + "A" * 28, worker_id="AWORKER1", value=87)
        failed = stubbed.notify_workers(
            subject="New work", message="More tweets tomorrow.", worker_ids=["AWORKER1", "AWORKER2"]
        )
        stub.assert_no_pending_responses()
    assert failed == {"AWORKER2": "gone"}
    assert check_all(client, seen) == []
    assert len(token) <= 64


def test_a_second_send_bonus_with_the_same_token_is_already_done(stubbed: MTurkMarketplace) -> None:
    with Stubber(stubbed.caller.client) as stub:
        stub.add_client_error(
            "send_bonus", service_error_code="RequestError", service_message="The UniqueRequestToken was already used."
        )
        paid = stubbed.send_bonus(
            worker_id="AWORKER1", assignment_id="3A" + "E" * 28, amount=Decimal("0.10"), reason="r", token="t"
        )
    assert paid is False


def test_an_approve_refused_because_it_is_already_approved_is_fine(stubbed: MTurkMarketplace) -> None:
    assignment = "3A" + "E" * 28
    row = {"AssignmentId": assignment, "WorkerId": "AW1", "HITId": HIT_ID, "AssignmentStatus": "Approved"}
    with Stubber(stubbed.caller.client) as stub:
        stub.add_client_error("approve_assignment", service_error_code="RequestError", service_message="status")
        stub.add_response("get_assignment", {"Assignment": row, "HIT": _hit()}, {"AssignmentId": assignment})
        stubbed.approve(assignment)
        stub.add_client_error("approve_assignment", service_error_code="RequestError", service_message="status")
        stub.add_response(
            "get_assignment",
            {"Assignment": {**row, "AssignmentStatus": "Rejected"}, "HIT": _hit()},
            {"AssignmentId": assignment},
        )
        with pytest.raises(MarketplaceError):
            stubbed.approve(assignment)


def test_the_service_model_check_catches_what_stubber_lets_through(stubbed: MTurkMarketplace) -> None:
    model = stubbed.caller.client.meta.service_model
    shape = model.operation_model("SendBonus").input_shape
    bad = {
        "WorkerId": "worker-1",
        "AssignmentId": "x",
        "BonusAmount": "0.251",
        "Reason": "r",
        "UniqueRequestToken": "t" * 65,
    }
    problems = violations(shape, bad)
    assert any("WorkerId" in p for p in problems) and any("BonusAmount" in p for p in problems)
    assert any("UniqueRequestToken" in p and "longer" in p for p in problems)
    enum = violations(model.operation_model("ListReviewableHITs").input_shape, {"Status": "Done"})
    assert enum and "not in" in enum[0]


def test_money_and_lengths_are_refused_before_any_call(stubbed: MTurkMarketplace) -> None:
    with pytest.raises(MarketplaceError, match="fraction of a cent"):
        stubbed.publish(_spec(reward=Decimal("0.055")))
    with pytest.raises(MarketplaceError, match="title"):
        stubbed.publish(_spec(title="x" * 129))
    with pytest.raises(MarketplaceError, match="USD"):
        stubbed.publish(_spec(currency="EUR"))


def test_tokens_are_deterministic_and_short() -> None:
    long = request_token("bonus", "x" * 200)
    assert long == request_token("bonus", "x" * 200) and len(long) == 64
    assert request_token("hit", "abc") == "hit:abc"


def test_the_local_bucket_spaces_calls_beyond_its_burst() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = LocalBucket(rate=2.0, burst=2, clock=lambda: now[0], sleep=sleep)
    waits = [bucket.acquire() for _ in range(4)]
    assert waits[:2] == [0.0, 0.0]
    assert waits[2] == pytest.approx(0.5) and waits[3] == pytest.approx(0.5)
