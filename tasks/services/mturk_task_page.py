"""The ExternalQuestion page's write: a worker's answers stored here before they go to MTurk."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.utils import timezone

from tasks.models import AssignmentState, Hit, Job
from tasks.services.collection import validate_value
from tasks.services.errors import ServiceError, SubmissionRefused
from tasks.services.external_work import ExternalAssignment, record_external_assignments
from tasks.services.mturk_common import MTURK, answers_by_item
from workforce.audit import Actor
from workforce.marketplaces.mturk.config import SUBMIT_HOSTS

PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"
_ID = re.compile(r"^[A-Z0-9]{1,64}$")
_WORKER = re.compile(r"^A[A-Z0-9]{1,63}$")


def submit_url(turk_submit_to: str) -> str:
    """``{turkSubmitTo}/mturk/externalSubmit``, refusing any host that is not MTurk's (an open redirect
    for answers otherwise). ``MTURK_EXTRA_SUBMIT_ORIGINS`` adds origins for a local stand-in only."""
    parts = urlsplit(turk_submit_to)
    origin = f"{parts.scheme}://{parts.netloc}"
    extra = set(getattr(settings, "MTURK_EXTRA_SUBMIT_ORIGINS", ()) or ())
    allowed = (parts.scheme == "https" and parts.hostname in SUBMIT_HOSTS and not parts.port) or origin in extra
    if not allowed or parts.path.strip("/") or parts.query or parts.fragment:
        raise ServiceError("turkSubmitTo is not an MTurk worker site.")
    return f"{origin}/mturk/externalSubmit"


def check_ids(*, assignment_id: str, hit_id: str, worker_id: str) -> None:
    if not _ID.match(hit_id):
        raise ServiceError("hitId is missing or malformed.")
    if assignment_id != PREVIEW and not _ID.match(assignment_id):
        raise ServiceError("assignmentId is missing or malformed.")
    if assignment_id != PREVIEW and not _WORKER.match(worker_id):
        raise ServiceError("workerId is missing or malformed.")


_SALT = "tasks.mturk-task-page"
SIGNATURE_MAX_AGE = 24 * 3600


def sign_ids(*, assignment_id: str, hit_id: str, worker_id: str) -> str:
    """A signature the page puts in its form: a POST must come from a page this site rendered for these ids."""
    return signing.dumps([assignment_id, hit_id, worker_id], salt=_SALT, compress=True)


def check_signature(signature: str, *, assignment_id: str, hit_id: str, worker_id: str) -> None:
    try:
        signed = signing.loads(signature, salt=_SALT, max_age=SIGNATURE_MAX_AGE)
    except signing.BadSignature as exc:
        raise ServiceError(
            "This form is not one this site showed (or it is older than a day); reload the task."
        ) from exc
    if signed != [assignment_id, hit_id, worker_id]:
        raise ServiceError("This form was shown for another assignment; reload the task.")


def mturk_hit(hit_id: str) -> Hit:
    hit = Hit.objects.select_related("job").filter(marketplace=MTURK, external_id=hit_id).first()
    if hit is None:
        raise ServiceError("This HIT is not one of ours.")
    return hit


def _checked_drawing(job: Job, item: str, value: Any, payload: Mapping[str, Any]) -> Any:
    try:
        return validate_value(job, value, payload)
    except SubmissionRefused as exc:
        raise SubmissionRefused(f"Item {item}: {exc}") from exc


def store_mturk_submission(
    *, hit: Hit, assignment_id: str, worker_id: str, fields: Mapping[str, Any], actor: Actor
) -> dict[str, Any]:
    """Record the answers (upsert on the AssignmentId, like every collect path) and return the item answers
    as posted; raises ``SubmissionRefused`` with the reason when they do not fit the job."""
    job = hit.job
    payloads = dict(hit.items.order_by("hit_items__position").values_list("external_id", "payload"))
    answers = answers_by_item(job, dict(fields), list(payloads))
    if set(answers) != set(payloads):
        raise SubmissionRefused("Answer every item of this task.")
    if job.is_shapes:  # drawings are checked against each item's image size, which only this page knows here
        answers = {item: _checked_drawing(job, item, value, payloads[item]) for item, value in answers.items()}
    result = record_external_assignments(
        job=job,
        marketplace=MTURK,
        records=[
            ExternalAssignment(
                external_assignment_id=assignment_id,
                external_hit_id=str(hit.external_id),
                external_worker_id=worker_id,
                answers=answers,
                state=AssignmentState.SUBMITTED,
                submitted_at=timezone.now(),
            )
        ],
        actor=actor,
        source="mturk:task-page",
    )
    if result.skipped:
        raise SubmissionRefused(result.skipped[0][1].capitalize() + ".")
    return answers
