"""The ExternalQuestion page's write: a worker's answers stored here (as a claim) before they go to MTurk."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.utils import timezone

from tasks.models import Assignment, Hit, Job, MTurkPageSubmission
from tasks.services.collection import validate_value
from tasks.services.errors import ServiceError, SubmissionRefused
from tasks.services.mturk_common import MTURK, answers_by_item
from workforce.audit import Actor, queue_audit_event
from workforce.marketplaces.mturk.config import SUBMIT_HOSTS
from workforce.models import Worker

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


def store_mturk_submission(
    *, hit: Hit, assignment_id: str, worker_id: str, fields: Mapping[str, Any], actor: Actor
) -> dict[str, Any]:
    """Check the answers against the job and keep them as the worker's claim (an ``MTurkPageSubmission``,
    upserted on the AssignmentId); return the item answers as posted. Raises ``SubmissionRefused`` with the
    reason when they do not fit the job, or when MTurk has already listed this assignment. On a multi-label
    job an item left out is an empty selection ("none of these apply"), as ``submit_assignment`` reads it.

    Nothing here counts as work: the ids are whatever the page's query string said, so the assignment is
    recorded only when MTurk lists it (``tasks.services.mturk_collect``), which confirms the claim."""
    job = hit.job
    payloads = dict(hit.items.order_by("hit_items__position").values_list("external_id", "payload"))
    answers = answers_by_item(job, dict(fields), list(payloads))
    if job.is_multilabel:  # no box ticked posts nothing: "none of these apply", as on the internal pool's page
        answers = {item: [] for item in payloads} | answers
    # a refusal names an item by its place on the page, never by its external id (which could tell gold apart)
    places = {item: place for place, item in enumerate(payloads, start=1)}
    if set(answers) != set(payloads):
        missing = [str(places[item]) for item in payloads if item not in answers]
        left = f" (unanswered: item{'s' if len(missing) > 1 else ''} {', '.join(missing)})" if missing else ""
        raise SubmissionRefused(f"Answer every item of this task{left}.")
    # drawings are checked against each item's image size, which only this page knows here
    checked = {item: _checked_value(job, places[item], value, payloads[item]) for item, value in answers.items()}
    now = timezone.now()
    with transaction.atomic():
        # MTurk already holds it: recorded here, or a confirmed claim (collect confirms claims of assignments it
        # lists even when it skips recording one, e.g. work that belongs to another job)
        recorded = Assignment.objects.filter(marketplace=MTURK, external_id=assignment_id).exists()
        if (
            recorded
            or MTurkPageSubmission.objects.filter(assignment_id=assignment_id, confirmed_at__isnull=False).exists()
        ):
            raise SubmissionRefused("MTurk already has this assignment's answers; it cannot be submitted again.")
        claim, _ = MTurkPageSubmission.objects.update_or_create(
            assignment_id=assignment_id,
            defaults={"hit": hit, "worker_id": worker_id, "answers": checked, "received_at": now},
        )
        queue_audit_event(
            actor=actor,
            action="mturk.page_submission",
            object_type="tasks.MTurkPageSubmission",
            object_id=claim.pk,
            after={
                "assignment": assignment_id,
                "hit": hit.external_id,
                "worker": _our_worker_pk(worker_id),
                "items": len(checked),
            },
            reason="answers posted on the ExternalQuestion page; they count once MTurk lists the assignment",
            created_at=now,
        )
    return checked if job.is_shapes else answers  # drawings go on normalised; labels as the worker gave them


def _our_worker_pk(worker_id: str) -> int | None:
    """Our ``Worker`` row's pk for an MTurk WorkerId, or None when there is none yet. The trail names workers by
    our own id only (WorkerIds are personal data and sealed events are never rewritten; see
    ``Actor.from_worker``); the claim row keeps the WorkerId. No row is created here: the page's ids are
    whatever its query string said, so a row waits until MTurk lists the assignment."""
    return Worker.objects.filter(marketplace=MTURK, external_id=worker_id).values_list("pk", flat=True).first()


def _checked_value(job: Job, place: int, value: Any, payload: Mapping[str, Any]) -> Any:
    try:
        return validate_value(job, value, payload)
    except SubmissionRefused as exc:
        raise SubmissionRefused(f"Item {place}: {exc}") from exc


def confirm_page_submissions(records: Iterable[tuple[str, str, str]], *, at: datetime) -> int:
    """Mark the page claims MTurk has listed, given ``(assignment id, worker id, HIT id)`` as MTurk reports
    them; a claim whose worker or HIT differs from MTurk's stays unconfirmed. Returns how many were marked."""
    reported = {aid: (worker, hit) for aid, worker, hit in records}
    if not reported:
        return 0
    rows = MTurkPageSubmission.objects.filter(assignment_id__in=reported, confirmed_at__isnull=True).values_list(
        "pk", "assignment_id", "worker_id", "hit__external_id"
    )
    matching = [pk for pk, aid, worker, hit in rows if reported[aid] == (worker, hit)]
    return MTurkPageSubmission.objects.filter(pk__in=matching).update(confirmed_at=at) if matching else 0
