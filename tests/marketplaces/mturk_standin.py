"""A local stand-in for MTurk's requester API (JSON 1.1 protocol), for boto3 pointed at it by ``endpoint_url``.

It keeps HIT types, HITs, assignments, bonuses, qualification types and the account balance; honours
``UniqueRequestToken`` (a second CreateHIT with the same token answers ``HitAlreadyExists`` naming the HIT;
a second SendBonus answers a ``RequestError`` about the token); charges the balance as MTurk does (a HIT's
rewards and fees when it is created, a bonus and its fee when it is sent), returns the money of an expired
HIT's unfilled slots and of a rejected assignment (taking it again when the HIT is made live again or the
rejection overridden), and keeps each charge and refund; and
injects faults on a share of calls: throttling, a 5xx ``ServiceFault``, or a reply lost after the stand-in
committed the call (the connection closes with no answer). Workers accept HITs through ``accept`` and
submit through ``POST /mturk/externalSubmit``, as MTurk's worker site does.

Its fee rule is written here independently of ``workforce.marketplaces.mturk_fees``, so the ledger is
checked against a second implementation.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

TARGET_PREFIX = "MTurkRequesterServiceV20170117."
MASTERS_IDS = {"2F1QJWKUDD8XADTFD2Q0G6UTO95ALH", "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6"}
ANSWERS_NS = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/QuestionFormAnswers.xsd"
MUTATING = frozenset(
    {
        "CreateHITType",
        "CreateHITWithHITType",
        "SendBonus",
        "ApproveAssignment",
        "RejectAssignment",
        "CreateAdditionalAssignmentsForHIT",
        "UpdateExpirationForHIT",
    }
)


class Fault(Exception):
    def __init__(self, status: int, kind: str, message: str, turk_code: str = "") -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.turk_code = status, kind, message, turk_code


def standin_fee(reward: Decimal, *, assignments: int, masters: bool) -> Decimal:
    rate = Decimal("0.40") if assignments >= 10 else Decimal("0.20")
    if masters:
        rate += Decimal("0.05")
    return max(Decimal("0.01"), (reward * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


@dataclass
class FaultPlan:
    """Which calls fail: ``rate`` of the calls to ``operations`` (all when empty), in ``kinds`` order."""

    rate: float = 0.0
    kinds: tuple[str, ...] = ("throttle", "5xx", "lost")
    operations: frozenset[str] = frozenset()
    seed: int = 7
    injected: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._next = 0

    def pick(self, operation: str) -> str:
        if self.rate <= 0 or (self.operations and operation not in self.operations):
            return ""
        if self._random.random() >= self.rate:
            return ""
        kind = self.kinds[self._next % len(self.kinds)]
        self._next += 1
        self.injected[kind] = self.injected.get(kind, 0) + 1
        return kind


class MTurkState:
    def __init__(self, *, balance: Decimal = Decimal("10000.00")) -> None:
        self.lock = threading.RLock()
        self.balance = balance
        self.hit_types: dict[str, dict[str, Any]] = {}
        self.hits: dict[str, dict[str, Any]] = {}
        self.assignments: dict[str, dict[str, Any]] = {}
        self.bonuses: list[dict[str, Any]] = []
        self.charges: list[tuple[str, Decimal, str]] = []
        self.tokens: dict[str, str] = {}
        self.qualification_types: dict[str, dict[str, Any]] = {}
        self.worker_qualifications: dict[tuple[str, str], int] = {}
        self.notified: list[tuple[str, str]] = []
        self.calls: dict[str, int] = {}
        self.faults = FaultPlan()
        self._counter = 0

    def new_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter:0{30 - len(prefix)}d}"

    def charge(self, kind: str, amount: Decimal, reference: str) -> None:
        if amount > self.balance:
            raise Fault(400, "RequestError", "Insufficient funds.", "AWS.MechanicalTurk.InsufficientFunds")
        self.balance -= amount
        self.charges.append((kind, amount, reference))

    def refund(self, kind: str, amount: Decimal, reference: str) -> None:
        """Money MTurk gives back (kept as a negative charge, so ``total_charged`` is what MTurk kept)."""
        self.balance += amount
        self.charges.append((kind, -amount, reference))

    def total_charged(self) -> Decimal:
        return sum((amount for _, amount, _ in self.charges), Decimal("0"))

    def _slot_price(self, hit: dict[str, Any]) -> tuple[Decimal, Decimal]:
        reward = Decimal(hit["Reward"])
        return reward, standin_fee(reward, assignments=hit["_original_max"], masters=hit["_masters"])

    def _settle_escrow(self, hit: dict[str, Any]) -> None:
        """An expired HIT's unfilled slots have their reward and fee returned; made live again, it holds
        them again (refused for want of funds, as MTurk refuses)."""
        expired = hit["Expiration"] <= time.time()
        if hit.get("_deleted") or (not expired and not hit.get("_returned")):
            return  # the common case, checked without counting assignments
        target = self._hit_view(hit)["NumberOfAssignmentsAvailable"] if expired else 0
        delta = target - hit.get("_returned", 0)
        reward, fee = self._slot_price(hit)
        if delta > 0:
            self.refund("unfilled_reward", reward * delta, hit["HITId"])
            self.refund("unfilled_fee", fee * delta, hit["HITId"])
        elif delta < 0:
            self.charge("reward", reward * -delta, hit["HITId"])
            self.charge("fee", fee * -delta, hit["HITId"])
        hit["_returned"] = target

    # --- operations -------------------------------------------------------------------------------

    def CreateHITType(self, p: dict[str, Any]) -> dict[str, Any]:
        key = json.dumps(p, sort_keys=True)
        for type_id, hit_type in self.hit_types.items():
            if hit_type["key"] == key:
                return {"HITTypeId": type_id}
        type_id = self.new_id("T")
        self.hit_types[type_id] = {"key": key, **p}
        return {"HITTypeId": type_id}

    def _hit_view(self, hit: dict[str, Any]) -> dict[str, Any]:
        done = self._held(hit["HITId"])
        completed = sum(a["AssignmentStatus"] in ("Approved", "Submitted", "Rejected") for a in done)
        return {
            **{k: v for k, v in hit.items() if not k.startswith("_")},
            "NumberOfAssignmentsCompleted": completed,
            "NumberOfAssignmentsPending": sum(a["AssignmentStatus"] == "Accepted" for a in done),
            "NumberOfAssignmentsAvailable": max(0, hit["MaxAssignments"] - len(done)),
        }

    def _held(self, hit_id: str) -> list[dict[str, Any]]:
        """The HIT's assignments that hold a slot (an abandoned or returned one gives it back)."""
        return [
            a
            for a in self.assignments.values()
            if a["HITId"] == hit_id and a.get("AssignmentStatus") not in ("Abandoned", "Returned")
        ]

    def CreateHITWithHITType(self, p: dict[str, Any]) -> dict[str, Any]:
        token = p.get("UniqueRequestToken")
        if token and f"hit:{token}" in self.tokens:
            hit_id = self.tokens[f"hit:{token}"]
            raise Fault(
                400,
                "RequestError",
                f"The HIT with ID `{hit_id}` already exists.",
                "AWS.MechanicalTurk.HitAlreadyExists",
            )
        hit_type = self.hit_types.get(p["HITTypeId"])
        if hit_type is None:
            raise Fault(400, "RequestError", "Unknown HIT type.")
        reward = Decimal(hit_type["Reward"])
        masters = any(r["QualificationTypeId"] in MASTERS_IDS for r in hit_type.get("QualificationRequirements", []))
        count = int(p["MaxAssignments"])
        hit_id = self.new_id("3")
        fee = standin_fee(reward, assignments=count, masters=masters)
        self.charge("reward", reward * count, hit_id)
        self.charge("fee", fee * count, hit_id)
        now = time.time()
        self.hits[hit_id] = {
            "HITId": hit_id,
            "HITTypeId": p["HITTypeId"],
            "HITGroupId": "G" + p["HITTypeId"][1:],
            "CreationTime": now,
            "Title": hit_type["Title"],
            "Description": hit_type["Description"],
            "Question": p["Question"],
            "HITStatus": "Assignable",
            "MaxAssignments": count,
            "Reward": hit_type["Reward"],
            "AutoApprovalDelayInSeconds": hit_type["AutoApprovalDelayInSeconds"],
            "Expiration": now + int(p["LifetimeInSeconds"]),
            "AssignmentDurationInSeconds": hit_type["AssignmentDurationInSeconds"],
            "RequesterAnnotation": p.get("RequesterAnnotation", ""),
            "QualificationRequirements": hit_type.get("QualificationRequirements", []),
            "HITReviewStatus": "NotReviewed",
            "_original_max": count,
            "_masters": masters,
        }
        if token:
            self.tokens[f"hit:{token}"] = hit_id
        return {"HIT": self._hit_view(self.hits[hit_id])}

    def _hit(self, hit_id: str) -> dict[str, Any]:
        hit = self.hits.get(hit_id)
        if hit is None or hit.get("_deleted"):
            raise Fault(400, "RequestError", f"Hit {hit_id} does not exist.")
        return hit

    def GetHIT(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"HIT": self._hit_view(self._hit(p["HITId"]))}

    def _page(self, rows: list[dict[str, Any]], p: dict[str, Any], key: str) -> dict[str, Any]:
        start = int(p.get("NextToken") or 0)
        size = int(p.get("MaxResults") or 10)
        page = rows[start : start + size]
        reply: dict[str, Any] = {key: page, "NumResults": len(page)}
        if start + size < len(rows):
            reply["NextToken"] = str(start + size)
        return reply

    def ListHITs(self, p: dict[str, Any]) -> dict[str, Any]:
        rows = [self._hit_view(h) for h in self.hits.values() if not h.get("_deleted")]
        return self._page(rows, p, "HITs")

    def _refresh_status(self, hit: dict[str, Any]) -> None:
        rows = self._held(hit["HITId"])
        finished = [a for a in rows if a["AssignmentStatus"] != "Accepted"]
        if hit["HITStatus"] == "Assignable" and len(finished) >= hit["MaxAssignments"]:
            hit["HITStatus"] = "Reviewable"
        if hit["Expiration"] <= time.time() and not any(a["AssignmentStatus"] == "Accepted" for a in rows):
            hit["HITStatus"] = "Reviewable"

    def ListReviewableHITs(self, p: dict[str, Any]) -> dict[str, Any]:
        for hit in self.hits.values():
            self._refresh_status(hit)
        rows = [
            {"HITId": h["HITId"], "HITTypeId": h["HITTypeId"]}
            for h in self.hits.values()
            if h["HITStatus"] == p.get("Status", "Reviewable")
            and not h.get("_deleted")
            and (not p.get("HITTypeId") or h["HITTypeId"] == p["HITTypeId"])
        ]
        return self._page(rows, p, "HITs")

    def _assignment_view(self, a: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in a.items() if not k.startswith("_")}

    def ListAssignmentsForHIT(self, p: dict[str, Any]) -> dict[str, Any]:
        self._hit(p["HITId"])
        statuses = set(p.get("AssignmentStatuses") or ["Submitted", "Approved", "Rejected"])
        rows = [
            self._assignment_view(a)
            for a in self.assignments.values()
            if a["HITId"] == p["HITId"] and a["AssignmentStatus"] in statuses
        ]
        return self._page(rows, p, "Assignments")

    def _assignment(self, assignment_id: str) -> dict[str, Any]:
        a = self.assignments.get(assignment_id)
        if a is None:
            raise Fault(400, "RequestError", f"Assignment {assignment_id} does not exist.")
        return a

    def GetAssignment(self, p: dict[str, Any]) -> dict[str, Any]:
        a = self._assignment(p["AssignmentId"])
        return {"Assignment": self._assignment_view(a), "HIT": self._hit_view(self.hits[a["HITId"]])}

    def ApproveAssignment(self, p: dict[str, Any]) -> dict[str, Any]:
        a = self._assignment(p["AssignmentId"])
        allowed = ("Submitted", "Rejected") if p.get("OverrideRejection") else ("Submitted",)
        if a["AssignmentStatus"] not in allowed:
            raise Fault(400, "RequestError", f"This operation can be called with a status of: {', '.join(allowed)}")
        if a["AssignmentStatus"] == "Rejected" and a["HITId"] in self.hits:  # an override pays it again
            reward, fee = self._slot_price(self.hits[a["HITId"]])
            self.charge("reward", reward, a["AssignmentId"])
            self.charge("fee", fee, a["AssignmentId"])
        a["AssignmentStatus"] = "Approved"
        a["ApprovalTime"] = time.time()
        return {}

    def RejectAssignment(self, p: dict[str, Any]) -> dict[str, Any]:
        a = self._assignment(p["AssignmentId"])
        if a["AssignmentStatus"] != "Submitted":
            raise Fault(400, "RequestError", "This operation can be called with a status of: Submitted")
        if a["HITId"] in self.hits:
            reward, fee = self._slot_price(self.hits[a["HITId"]])
            self.refund("rejected_reward", reward, a["AssignmentId"])
            self.refund("rejected_fee", fee, a["AssignmentId"])
        a["AssignmentStatus"] = "Rejected"
        a["RejectionTime"] = time.time()
        a["RequesterFeedback"] = p["RequesterFeedback"]
        return {}

    def SendBonus(self, p: dict[str, Any]) -> dict[str, Any]:
        token = p.get("UniqueRequestToken")
        if token and f"bonus:{token}" in self.tokens:
            raise Fault(400, "RequestError", f"The UniqueRequestToken {token} has already been used.")
        a = self._assignment(p["AssignmentId"])
        if a["WorkerId"] != p["WorkerId"]:
            raise Fault(400, "RequestError", "The worker did not work on this assignment.")
        amount = Decimal(p["BonusAmount"])
        self.charge("bonus", amount, p["AssignmentId"])
        self.charge("bonus_fee", standin_fee(amount, assignments=1, masters=False), p["AssignmentId"])
        self.bonuses.append({**p, "BonusAmount": str(amount), "GrantTime": time.time()})
        if token:
            self.tokens[f"bonus:{token}"] = p["AssignmentId"]
        return {}

    def ListBonusPayments(self, p: dict[str, Any]) -> dict[str, Any]:
        rows = [
            {k: b[k] for k in ("WorkerId", "BonusAmount", "AssignmentId", "Reason", "GrantTime")}
            for b in self.bonuses
            if b["AssignmentId"] == p.get("AssignmentId", b["AssignmentId"])
        ]
        return self._page(rows, p, "BonusPayments")

    def CreateAdditionalAssignmentsForHIT(self, p: dict[str, Any]) -> dict[str, Any]:
        token = p.get("UniqueRequestToken")
        if token and f"extend:{token}" in self.tokens:
            raise Fault(400, "RequestError", f"The UniqueRequestToken {token} has already been used.")
        hit = self._hit(p["HITId"])
        extra = int(p["NumberOfAdditionalAssignments"])
        if hit["_original_max"] < 10 <= hit["MaxAssignments"] + extra:
            raise Fault(400, "RequestError", "A HIT created with fewer than 10 assignments cannot reach 10.")
        reward = Decimal(hit["Reward"])
        fee = standin_fee(reward, assignments=hit["_original_max"], masters=hit["_masters"])
        self.charge("reward", reward * extra, hit["HITId"])
        self.charge("fee", fee * extra, hit["HITId"])
        hit["MaxAssignments"] += extra
        hit["HITStatus"] = "Assignable"
        self._settle_escrow(hit)
        if token:
            self.tokens[f"extend:{token}"] = hit["HITId"]
        return {}

    def UpdateExpirationForHIT(self, p: dict[str, Any]) -> dict[str, Any]:
        hit = self._hit(p["HITId"])
        before = hit["Expiration"]
        hit["Expiration"] = float(p["ExpireAt"])
        try:
            self._settle_escrow(hit)
        except Fault:
            hit["Expiration"] = before
            raise
        if hit["Expiration"] <= time.time():
            self._refresh_status(hit)
        else:
            hit["HITStatus"] = "Assignable"
        return {}

    def DeleteHIT(self, p: dict[str, Any]) -> dict[str, Any]:
        hit = self._hit(p["HITId"])
        if any(
            a["HITId"] == hit["HITId"] and a["AssignmentStatus"] in ("Accepted", "Submitted")
            for a in self.assignments.values()
        ):
            raise Fault(400, "RequestError", "The HIT has assignments that are not yet reviewed.")
        hit["_deleted"] = True
        return {}

    def GetAccountBalance(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"AvailableBalance": f"{self.balance:.2f}", "OnHoldBalance": "0.00"}

    def CreateQualificationType(self, p: dict[str, Any]) -> dict[str, Any]:
        if any(q["Name"] == p["Name"] for q in self.qualification_types.values()):
            raise Fault(400, "RequestError", "You have already created a QualificationType with this name.")
        type_id = self.new_id("Q")
        self.qualification_types[type_id] = {**p, "QualificationTypeId": type_id, "CreationTime": time.time()}
        return {"QualificationType": self.qualification_types[type_id]}

    def AssociateQualificationWithWorker(self, p: dict[str, Any]) -> dict[str, Any]:
        if p["QualificationTypeId"] not in self.qualification_types:
            raise Fault(400, "RequestError", "Unknown qualification type.")
        self.worker_qualifications[(p["QualificationTypeId"], p["WorkerId"])] = int(p.get("IntegerValue", 1))
        return {}

    def NotifyWorkers(self, p: dict[str, Any]) -> dict[str, Any]:
        self.notified += [(w, p["Subject"]) for w in p["WorkerIds"]]
        return {"NotifyWorkersFailureStatuses": []}

    def CreateWorkerBlock(self, p: dict[str, Any]) -> dict[str, Any]:
        return {}

    # --- the worker side --------------------------------------------------------------------------

    def accept(self, hit_id: str, worker_id: str) -> str:
        with self.lock:
            hit = self._hit(hit_id)
            taken = self._held(hit_id)
            if hit["HITStatus"] != "Assignable" or len(taken) >= hit["MaxAssignments"]:
                raise Fault(400, "RequestError", "The HIT is not available.")
            if any(a["WorkerId"] == worker_id for a in taken):
                raise Fault(400, "RequestError", "The worker already worked on this HIT.")
            assignment_id = self.new_id("3A")
            now = time.time()
            self.assignments[assignment_id] = {
                "AssignmentId": assignment_id,
                "WorkerId": worker_id,
                "HITId": hit_id,
                "AssignmentStatus": "Accepted",
                "AcceptTime": now,
                "Deadline": now + hit["AssignmentDurationInSeconds"],
            }
            return assignment_id

    def abandon(self, assignment_id: str) -> None:
        """The worker's time runs out (or they return the HIT): the slot is available again."""
        with self.lock:
            a = self._assignment(assignment_id)
            if a["AssignmentStatus"] != "Accepted":
                raise Fault(400, "RequestError", "Only an accepted assignment can be abandoned.")
            a["AssignmentStatus"] = "Abandoned"

    def external_submit(self, form: list[tuple[str, str]]) -> None:
        fields = dict(form)
        with self.lock:
            a = self._assignment(fields.get("assignmentId", ""))
            if a["AssignmentStatus"] != "Accepted":
                raise Fault(400, "RequestError", "The assignment was submitted already.")
            answers = "".join(
                f"<Answer><QuestionIdentifier>{escape(k)}</QuestionIdentifier><FreeText>{escape(v)}</FreeText></Answer>"
                for k, v in form
                if k != "assignmentId"
            )
            now = time.time()
            a.update(
                AssignmentStatus="Submitted",
                SubmitTime=now,
                AutoApprovalTime=now + self.hits[a["HITId"]]["AutoApprovalDelayInSeconds"],
                Answer=f'<?xml version="1.0" encoding="UTF-8"?><QuestionFormAnswers xmlns="{ANSWERS_NS}">'
                f"{answers}</QuestionFormAnswers>",
            )

    def handle(self, operation: str, params: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """Run ``operation``; returns (reply, fault kind injected after the commit, if any)."""
        with self.lock:
            self.calls[operation] = self.calls.get(operation, 0) + 1
            fault = self.faults.pick(operation)
            if fault == "throttle":
                raise Fault(400, "ThrottlingException", "Rate exceeded")
            if fault == "5xx":
                raise Fault(500, "ServiceFault", "We encountered an internal error. Please try again.")
            method = getattr(self, operation, None)
            if method is None:
                raise Fault(400, "UnknownOperationException", f"{operation} is not in the stand-in.")
            for hit in self.hits.values():  # HITs expired since the last call give their unfilled slots back
                self._settle_escrow(hit)
            return method(params), fault


class _Handler(BaseHTTPRequestHandler):
    state: MTurkState
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _send(self, status: int, body: dict[str, Any] | str, content_type: str = "application/x-amz-json-1.1") -> None:
        data = (json.dumps(body, default=str) if isinstance(body, dict) else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", "standin")
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.startswith("/mturk/externalSubmit"):
            try:
                self.state.external_submit(parse_qsl(raw.decode(), keep_blank_values=True))
            except Fault as fault:
                self._send(400, fault.message, "text/plain")
                return
            self._send(200, "Thank you: your work was submitted.", "text/html")
            return
        target = self.headers.get("X-Amz-Target", "")
        if not target.startswith(TARGET_PREFIX):
            self._send(400, {"__type": "UnknownOperationException", "message": target})
            return
        try:
            reply, fault = self.state.handle(target[len(TARGET_PREFIX) :], json.loads(raw or b"{}"))
        except Fault as error:
            body = {"__type": error.kind, "Message": error.message}
            if error.turk_code:
                body["TurkErrorCode"] = error.turk_code
            self._send(error.status, body)
            return
        if fault == "lost":  # committed above; the caller never hears of it
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self._send(200, reply)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client killed mid-request (the crash test's SIGKILL) is expected, not an error to print."""
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class MTurkStandIn:
    """``with MTurkStandIn() as standin: boto3.client("mturk", endpoint_url=standin.url, ...)``"""

    def __init__(self, *, balance: Decimal = Decimal("10000.00"), host: str = "127.0.0.1") -> None:
        self.state = MTurkState(balance=balance)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = _Server((host, 0), handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> MTurkStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @contextmanager
    def faults(self, plan: FaultPlan) -> Iterator[FaultPlan]:
        before = self.state.faults
        self.state.faults = plan
        try:
            yield plan
        finally:
            self.state.faults = before
