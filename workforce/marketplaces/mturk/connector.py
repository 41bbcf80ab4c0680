"""``MTurkMarketplace``: the ``Marketplace`` protocol (and MTurk's extra operations) over boto3.

Dataclasses in, dataclasses out; boto3 dicts are parsed here and nowhere else. No database: intent and
results are recorded by ``tasks.services.mturk_*`` around these calls.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from workforce.marketplaces.base import AssignmentRecord, HitSpec, MarketplaceError, PublishedHit
from workforce.marketplaces.mturk.client import AlreadyDone, MTurkCaller
from workforce.marketplaces.mturk.config import MTurkSettings
from workforce.marketplaces.mturk.documents import parse_question_form_answers

MAX_TITLE = 128
MAX_DESCRIPTION = 2000
MAX_KEYWORDS = 1000
MAX_ANNOTATION = 255
MAX_FEEDBACK = 1024
MAX_SUBJECT = 200
MAX_MESSAGE = 4096
NOTIFY_BATCH = 100
CENT = Decimal("0.01")
# AssignmentStatus -> our AssignmentState values (the strings, so this package needs no tasks import).
ASSIGNMENT_STATUS = {"Submitted": "submitted", "Approved": "approved", "Rejected": "rejected"}


def request_token(*parts: str) -> str:
    """A deterministic ``UniqueRequestToken`` (at most 64 characters) for the action named by ``parts``."""
    joined = ":".join(parts)
    if len(joined) <= 64:
        return joined
    return hashlib.sha256(joined.encode()).hexdigest()


def money(amount: Decimal) -> str:
    """A reward/bonus as MTurk's string (dollars and cents); refuses fractions of a cent."""
    if not isinstance(amount, Decimal) or amount < 0:
        raise MarketplaceError(f"{amount!r} is not an amount of money.", permanent=True)
    if amount != amount.quantize(CENT):
        raise MarketplaceError(f"MTurk pays whole cents; {amount} has a fraction of a cent.", permanent=True)
    return f"{amount.quantize(CENT)}"


def _limit(value: str, maximum: int, what: str) -> str:
    if len(value) > maximum:
        raise MarketplaceError(f"The {what} is longer than MTurk's {maximum} characters.", permanent=True)
    return value


def _seconds(value: timedelta) -> int:
    return int(value.total_seconds())


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(value), tz=UTC)


@dataclass(frozen=True)
class RemoteHit:
    hit_id: str
    hit_type_id: str
    status: str
    max_assignments: int
    reward: Decimal
    annotation: str
    expires_at: datetime | None
    completed: int = 0
    pending: int = 0
    available: int = 0


@dataclass(frozen=True)
class Balance:
    available: Decimal
    on_hold: Decimal


def _remote_hit(hit: Mapping[str, Any]) -> RemoteHit:
    return RemoteHit(
        hit_id=str(hit["HITId"]),
        hit_type_id=str(hit.get("HITTypeId", "")),
        status=str(hit.get("HITStatus", "")),
        max_assignments=int(hit.get("MaxAssignments", 0)),
        reward=Decimal(str(hit.get("Reward", "0"))),
        annotation=str(hit.get("RequesterAnnotation", "") or ""),
        expires_at=_aware(hit.get("Expiration")),
        completed=int(hit.get("NumberOfAssignmentsCompleted", 0) or 0),
        pending=int(hit.get("NumberOfAssignmentsPending", 0) or 0),
        available=int(hit.get("NumberOfAssignmentsAvailable", 0) or 0),
    )


def assignment_record(assignment: Mapping[str, Any], *, annotation: str = "") -> AssignmentRecord:
    status = str(assignment.get("AssignmentStatus", ""))
    return AssignmentRecord(
        external_assignment_id=str(assignment["AssignmentId"]),
        external_hit_id=str(assignment["HITId"]),
        external_worker_id=str(assignment["WorkerId"]),
        status=ASSIGNMENT_STATUS.get(status, status.lower()),
        answers=parse_question_form_answers(str(assignment.get("Answer") or "<QuestionFormAnswers/>")),
        accepted_at=_aware(assignment.get("AcceptTime")),
        submitted_at=_aware(assignment.get("SubmitTime")),
        auto_approval_at=_aware(assignment.get("AutoApprovalTime")),
        requester_annotation=annotation,
    )


class MTurkMarketplace:
    name = "mturk"

    def __init__(self, caller: MTurkCaller | None = None, config: MTurkSettings | None = None) -> None:
        self.config = config or MTurkSettings.from_django()
        self.caller = caller or MTurkCaller.from_settings(self.config)
        self._hit_types: dict[str, str] = {}

    # --- publishing -------------------------------------------------------------------------------

    def hit_type_params(self, spec: HitSpec) -> dict[str, Any]:
        return {
            "AutoApprovalDelayInSeconds": _seconds(spec.auto_approval_delay),
            "AssignmentDurationInSeconds": _seconds(spec.assignment_duration),
            "Reward": money(spec.reward),
            "Title": _limit(spec.title, MAX_TITLE, "title"),
            "Keywords": _limit(", ".join(spec.keywords), MAX_KEYWORDS, "keyword list"),
            "Description": _limit(spec.description, MAX_DESCRIPTION, "description"),
            "QualificationRequirements": [dict(r) for r in spec.qualification_requirements],
        }

    def create_hit_type(self, spec: HitSpec) -> str:
        """The HIT type for ``spec`` (MTurk returns the same id for the same parameters; cached per run)."""
        if spec.currency != "USD":
            raise MarketplaceError("MTurk pays in USD only.", permanent=True)
        params = self.hit_type_params(spec)
        key = json.dumps(params, sort_keys=True)
        if key not in self._hit_types:
            self._hit_types[key] = str(self.caller.call("create_hit_type", **params)["HITTypeId"])
        return self._hit_types[key]

    def publish(self, spec: HitSpec) -> PublishedHit:
        """CreateHITType + CreateHITWithHITType with a token derived from our Hit's UUID. If MTurk already
        has the HIT (an earlier try that lost its reply), that HIT is found and adopted."""
        hit_type_id = self.create_hit_type(spec)
        token = request_token("hit", spec.hit_id.replace("-", ""))
        try:
            reply = self.caller.call(
                "create_hit_with_hit_type",
                HITTypeId=hit_type_id,
                MaxAssignments=spec.max_assignments,
                LifetimeInSeconds=_seconds(spec.lifetime),
                Question=spec.question,
                RequesterAnnotation=_limit(spec.hit_id, MAX_ANNOTATION, "annotation"),
                UniqueRequestToken=token,
            )
        except AlreadyDone as done:
            adopted = self.adopt(spec.hit_id, hint=done.hit_id)
            if adopted is None:
                raise MarketplaceError(
                    f"MTurk says HIT {spec.hit_id} exists but no HIT carries its annotation yet.", permanent=False
                ) from done
            return PublishedHit(
                hit_id=spec.hit_id,
                external_id=adopted.hit_id,
                group_id=adopted.hit_type_id,
                expires_at=adopted.expires_at,
                adopted=True,
            )
        hit = reply["HIT"]
        return PublishedHit(
            hit_id=spec.hit_id,
            external_id=str(hit["HITId"]),
            group_id=str(hit.get("HITGroupId") or hit_type_id),
            expires_at=_aware(hit.get("Expiration")),
        )

    def adopt(self, annotation: str, *, hint: str = "") -> RemoteHit | None:
        """The remote HIT carrying ``annotation``: the one named in an idempotency reply, else a ListHITs scan."""
        if hint:
            hit = self.get_hit(hint)
            if hit.annotation == annotation:
                return hit
        return next((hit for hit in self.list_hits() if hit.annotation == annotation), None)

    def get_hit(self, external_hit_id: str) -> RemoteHit:
        return _remote_hit(self.caller.call("get_hit", HITId=external_hit_id)["HIT"])

    def list_hits(self) -> Iterator[RemoteHit]:
        for hit in self.caller.pages("list_hits", "HITs"):
            yield _remote_hit(hit)

    def list_reviewable_hits(self, *, hit_type_id: str = "") -> Iterator[str]:
        params = {"Status": "Reviewable", **({"HITTypeId": hit_type_id} if hit_type_id else {})}
        for hit in self.caller.pages("list_reviewable_hits", "HITs", **params):
            yield str(hit["HITId"])

    def create_additional_assignments(self, external_hit_id: str, *, count: int, token: str) -> bool:
        """Returns False when the token was used before (the assignments exist already)."""
        if count < 1:
            raise MarketplaceError("Ask for at least one additional assignment.", permanent=True)
        try:
            self.caller.call(
                "create_additional_assignments_for_hit",
                HITId=external_hit_id,
                NumberOfAdditionalAssignments=count,
                UniqueRequestToken=token,
            )
        except AlreadyDone:
            return False
        return True

    def set_expiration(self, external_hit_id: str, expire_at: datetime) -> None:
        self.caller.call("update_expiration_for_hit", HITId=external_hit_id, ExpireAt=expire_at)

    def expire(self, external_hit_id: str) -> None:
        """Stop the HIT now: a time in the past expires it at once (work in progress may still be submitted)."""
        self.set_expiration(external_hit_id, datetime(2015, 1, 1, tzinfo=UTC))

    def delete_hit(self, external_hit_id: str) -> None:
        self.caller.call("delete_hit", HITId=external_hit_id)

    def get_balance(self) -> Balance:
        reply = self.caller.call("get_account_balance")
        return Balance(
            available=Decimal(str(reply.get("AvailableBalance", "0"))),
            on_hold=Decimal(str(reply.get("OnHoldBalance", "0") or "0")),
        )

    # --- collecting -------------------------------------------------------------------------------

    def list_assignments(self, external_hit_id: str) -> Sequence[AssignmentRecord]:
        return [
            assignment_record(a)
            for a in self.caller.pages(
                "list_assignments_for_hit",
                "Assignments",
                HITId=external_hit_id,
                AssignmentStatuses=["Submitted", "Approved", "Rejected"],
            )
        ]

    def get_assignment(self, external_assignment_id: str) -> AssignmentRecord:
        reply = self.caller.call("get_assignment", AssignmentId=external_assignment_id)
        annotation = str((reply.get("HIT") or {}).get("RequesterAnnotation", "") or "")
        return assignment_record(reply["Assignment"], annotation=annotation)

    # --- review and pay ---------------------------------------------------------------------------

    def _settled(self, external_assignment_id: str, status: str, error: MarketplaceError) -> None:
        """A refused approve/reject is fine when the assignment already has the status we asked for."""
        if not error.permanent:
            raise error
        if self.get_assignment(external_assignment_id).status != status:
            raise error

    def approve(self, external_assignment_id: str, *, feedback: str = "") -> None:
        params: dict[str, Any] = {"AssignmentId": external_assignment_id}
        if feedback:
            params["RequesterFeedback"] = _limit(feedback, MAX_FEEDBACK, "feedback")
        try:
            self.caller.call("approve_assignment", **params)
        except MarketplaceError as error:
            self._settled(external_assignment_id, "approved", error)

    def override_rejection(self, external_assignment_id: str, *, feedback: str = "") -> None:
        params: dict[str, Any] = {"AssignmentId": external_assignment_id, "OverrideRejection": True}
        if feedback:
            params["RequesterFeedback"] = _limit(feedback, MAX_FEEDBACK, "feedback")
        try:
            self.caller.call("approve_assignment", **params)
        except MarketplaceError as error:
            self._settled(external_assignment_id, "approved", error)

    def reject(self, external_assignment_id: str, *, feedback: str) -> None:
        if not feedback.strip():
            raise MarketplaceError("MTurk needs feedback to tell the worker why the work was rejected.", permanent=True)
        try:
            self.caller.call(
                "reject_assignment",
                AssignmentId=external_assignment_id,
                RequesterFeedback=_limit(feedback, MAX_FEEDBACK, "feedback"),
            )
        except MarketplaceError as error:
            self._settled(external_assignment_id, "rejected", error)

    def send_bonus(self, *, worker_id: str, assignment_id: str, amount: Decimal, reason: str, token: str) -> bool:
        """Pay a bonus once per ``token``. Returns False when MTurk had already paid it (token seen)."""
        if not reason.strip():
            raise MarketplaceError("MTurk shows the worker a reason for every bonus; give one.", permanent=True)
        if amount <= 0:
            raise MarketplaceError("A bonus must be positive.", permanent=True)
        try:
            self.caller.call(
                "send_bonus",
                WorkerId=worker_id,
                AssignmentId=assignment_id,
                BonusAmount=money(amount),
                Reason=_limit(reason, MAX_FEEDBACK, "bonus reason"),
                UniqueRequestToken=token,
            )
        except AlreadyDone:
            return False
        return True

    def list_bonus_payments(self, external_assignment_id: str) -> list[tuple[Decimal, str]]:
        """(amount, reason) of every bonus paid on an assignment."""
        return [
            (Decimal(str(p["BonusAmount"])), str(p.get("Reason", "")))
            for p in self.caller.pages("list_bonus_payments", "BonusPayments", AssignmentId=external_assignment_id)
        ]

    # --- workers and qualifications ---------------------------------------------------------------

    def create_qualification_type(
        self,
        *,
        name: str,
        description: str,
        keywords: str = "",
        test: str = "",
        answer_key: str = "",
        test_duration: timedelta | None = None,
        retry_delay: timedelta | None = None,
    ) -> str:
        params: dict[str, Any] = {
            "Name": _limit(name, MAX_TITLE, "qualification name"),
            "Description": _limit(description or name, MAX_DESCRIPTION, "qualification description"),
            "QualificationTypeStatus": "Active",
        }
        if keywords:
            params["Keywords"] = keywords
        if test:
            params["Test"] = test
            params["TestDurationInSeconds"] = _seconds(test_duration or timedelta(minutes=10))
            if answer_key:
                params["AnswerKey"] = answer_key
        if retry_delay is not None:
            params["RetryDelayInSeconds"] = _seconds(retry_delay)
        reply = self.caller.call("create_qualification_type", **params)
        return str(reply["QualificationType"]["QualificationTypeId"])

    def associate_qualification(self, *, type_id: str, worker_id: str, value: int = 1) -> None:
        self.caller.call(
            "associate_qualification_with_worker",
            QualificationTypeId=type_id,
            WorkerId=worker_id,
            IntegerValue=int(value),
            SendNotification=False,
        )

    def disassociate_qualification(self, *, type_id: str, worker_id: str, reason: str = "") -> None:
        params = {"QualificationTypeId": type_id, "WorkerId": worker_id}
        self.caller.call("disassociate_qualification_from_worker", **params, **({"Reason": reason} if reason else {}))

    def create_worker_block(self, *, worker_id: str, reason: str) -> None:
        """A hard, account-wide block: it counts against the worker's record, so prefer a soft block."""
        self.caller.call("create_worker_block", WorkerId=worker_id, Reason=reason)

    def notify_workers(self, *, subject: str, message: str, worker_ids: Sequence[str]) -> dict[str, str]:
        """Message workers (100 per call); returns {worker id: failure message} for those not reached."""
        failed: dict[str, str] = {}
        ids = list(dict.fromkeys(worker_ids))
        for start in range(0, len(ids), NOTIFY_BATCH):
            reply = self.caller.call(
                "notify_workers",
                Subject=_limit(subject, MAX_SUBJECT, "subject"),
                MessageText=_limit(message, MAX_MESSAGE, "message"),
                WorkerIds=ids[start : start + NOTIFY_BATCH],
            )
            for status in reply.get("NotifyWorkersFailureStatuses") or []:
                failed[str(status.get("WorkerId"))] = str(status.get("NotifyWorkersFailureMessage", ""))
        return failed
