"""MTurk's documents: ExternalQuestion and HTMLQuestion going out; QuestionFormAnswers and SQS
notification messages coming back. Pure functions, no network, no database."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from workforce.marketplaces.base import MarketplaceError

EXTERNAL_QUESTION_NS = (
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd"
)
HTML_QUESTION_NS = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/HTMLQuestion.xsd"
MAX_QUESTION_CHARS = 131072
MAX_ANSWER_BYTES = 2 * 1024 * 1024


def external_question(url: str, *, frame_height: int = 800) -> str:
    """An ExternalQuestion pointing at ``url`` (https only; MTurk frames it and adds the worker's ids)."""
    if not url.startswith("https://"):
        raise MarketplaceError("An ExternalQuestion URL must be https.", permanent=True)
    return (
        f'<ExternalQuestion xmlns="{EXTERNAL_QUESTION_NS}">'
        f"<ExternalURL>{escape(url)}</ExternalURL>"
        f"<FrameHeight>{int(frame_height)}</FrameHeight>"
        "</ExternalQuestion>"
    )


def html_question(html: str, *, frame_height: int = 800) -> str:
    """An HTMLQuestion around a full HTML page (which must post to MTurk's externalSubmit itself)."""
    if "]]>" in html:
        raise MarketplaceError("The HTML of an HTMLQuestion may not contain ']]>'.", permanent=True)
    document = (
        f'<HTMLQuestion xmlns="{HTML_QUESTION_NS}">'
        f"<HTMLContent><![CDATA[{html}]]></HTMLContent>"
        f"<FrameHeight>{int(frame_height)}</FrameHeight>"
        "</HTMLQuestion>"
    )
    if len(document) > MAX_QUESTION_CHARS:
        raise MarketplaceError(f"The HTMLQuestion is longer than {MAX_QUESTION_CHARS} characters.", permanent=True)
    return document


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_question_form_answers(xml: str) -> dict[str, Any]:
    """``QuestionFormAnswers`` XML -> {QuestionIdentifier: value}. Free text gives a string, selections a
    string (one) or a list (several); an identifier answered twice (checkbox groups) gives a list."""
    data = xml.encode()
    if len(data) > MAX_ANSWER_BYTES:
        raise MarketplaceError("The assignment's answer XML is too large.", permanent=True)
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise MarketplaceError("The assignment's answer XML declares entities.", permanent=True)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise MarketplaceError(f"The assignment's answer XML is not well-formed ({exc}).", permanent=True) from exc
    answers: dict[str, Any] = {}
    for answer in root:
        if _local(answer.tag) != "Answer":
            continue
        identifier, values = "", list[Any]()
        for part in answer:
            name = _local(part.tag)
            if name == "QuestionIdentifier":
                identifier = (part.text or "").strip()
            elif name in ("FreeText", "SelectionIdentifier", "OtherSelectionText"):
                values.append(part.text or "")
            elif name == "UploadedFileKey":
                values.append({"file_key": (part.text or "").strip()})
        if not identifier:
            continue
        value: Any = values[0] if len(values) == 1 else values
        if identifier in answers:
            previous = answers[identifier]
            value = [
                *(previous if isinstance(previous, list) else [previous]),
                *([value] if len(values) == 1 else values),
            ]
        answers[identifier] = value
    return answers


@dataclass(frozen=True)
class NotificationEvent:
    event_type: str
    hit_id: str
    assignment_id: str
    hit_type_id: str
    timestamp: datetime | None


@dataclass(frozen=True)
class Notification:
    event_doc_id: str
    events: tuple[NotificationEvent, ...]


def _timestamp(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_notification(body: str) -> Notification:
    """An MTurk SQS message body (JSON: ``EventDocId``, ``EventDocVersion``, ``Events`` with ``EventType``,
    ``EventTimestamp``, ``HITTypeId``, ``HITId``, ``AssignmentId``)."""
    try:
        document: Mapping[str, Any] = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise MarketplaceError(f"Not an MTurk notification (not JSON: {exc}).", permanent=True) from exc
    if not isinstance(document, dict) or not document.get("EventDocId") or "Events" not in document:
        raise MarketplaceError("Not an MTurk notification (no EventDocId or Events).", permanent=True)
    events = tuple(
        NotificationEvent(
            event_type=str(event.get("EventType", "")),
            hit_id=str(event.get("HITId", "") or ""),
            assignment_id=str(event.get("AssignmentId", "") or ""),
            hit_type_id=str(event.get("HITTypeId", "") or ""),
            timestamp=_timestamp(event.get("EventTimestamp")),
        )
        for event in document.get("Events") or []
        if isinstance(event, dict)
    )
    return Notification(event_doc_id=str(document["EventDocId"]), events=events)
