"""MTurk workers: our qualification tests as QualificationTypes, scores as a score qualification, soft
blocks, and messages (NotifyWorkers)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from django.db import IntegrityError, transaction
from django.utils import timezone

from qualification.models import QualificationTest
from qualification.mturk_xml import MturkXmlError, export_mturk_test
from tasks.models import Job, MTurkQualificationPurpose, MTurkQualificationType, WorkerJobScore
from tasks.services.errors import ServiceError
from tasks.services.mturk_common import MTURK, mturk_connector
from workforce.audit import Actor, QueuedEvent, record_audit_event, record_audit_events
from workforce.marketplaces.mturk import MTurkMarketplace
from workforce.models import Worker

BLOCK_NAME = "crowdops soft block"


def _remember(
    *,
    purpose: str,
    type_id: str,
    name: str,
    actor: Actor,
    test: QualificationTest | None = None,
    job: Job | None = None,
) -> MTurkQualificationType:
    try:
        with transaction.atomic():
            row = MTurkQualificationType.objects.create(
                purpose=purpose, type_id=type_id, name=name, test=test, job=job, created_at=timezone.now()
            )
            record_audit_event(
                actor=actor,
                action="mturk.qualification_type_created",
                object_type="mturk_qualification_type",
                object_id=row.pk,
                after={"purpose": purpose, "type_id": type_id},
            )
            return row
    except IntegrityError:
        # Another run made one first; ours stays unused on MTurk (Inactive types cost nothing).
        existing = MTurkQualificationType.objects.filter(purpose=purpose, test=test, job=job).first()
        if existing is None:
            raise
        return existing


def ensure_mturk_test_qualification(
    *, test: QualificationTest, actor: Actor, connector: MTurkMarketplace | None = None
) -> MTurkQualificationType:
    """Our test as a QualificationType with a Test (QuestionForm) and an AnswerKey, created once."""
    existing = MTurkQualificationType.objects.filter(purpose=MTurkQualificationPurpose.TEST, test=test).first()
    if existing is not None:
        return existing
    connector = mturk_connector(connector)
    try:
        question_form, answer_key = export_mturk_test(test)
    except MturkXmlError as exc:
        raise ServiceError(str(exc)) from exc
    name = f"{test.name} (v{test.version}, crowdops {test.pk})"[:128]
    type_id = connector.create_qualification_type(
        name=name,
        description=test.description or test.name,
        test=question_form,
        answer_key=answer_key if "<Question>" in answer_key else "",
        test_duration=test.time_limit,
        retry_delay=test.retry_delay,
    )
    return _remember(purpose=MTurkQualificationPurpose.TEST, type_id=type_id, name=name, test=test, actor=actor)


def _score_type(*, job: Job, actor: Actor, connector: MTurkMarketplace) -> MTurkQualificationType:
    existing = MTurkQualificationType.objects.filter(purpose=MTurkQualificationPurpose.SCORE, job=job).first()
    if existing is not None:
        return existing
    name = f"{job.name} score (crowdops job {job.pk})"[:128]
    type_id = connector.create_qualification_type(
        name=name, description=f"Gold accuracy (0-100) of the worker on {job.name}."
    )
    return _remember(purpose=MTurkQualificationPurpose.SCORE, type_id=type_id, name=name, job=job, actor=actor)


def push_mturk_scores(*, job: Job, actor: Actor, connector: MTurkMarketplace | None = None) -> int:
    """Each MTurk worker's gold accuracy on ``job`` (0-100) as the job's score qualification value, so later
    HIT types can require it (AssociateQualificationWithWorker updates the value in place)."""
    connector = mturk_connector(connector)
    qualification = _score_type(job=job, actor=actor, connector=connector)
    scores = WorkerJobScore.objects.filter(job=job, worker__marketplace=MTURK, accuracy__isnull=False).values_list(
        "worker__external_id", "accuracy"
    )
    pushed = 0
    for worker_id, accuracy in scores:
        connector.associate_qualification(
            type_id=qualification.type_id, worker_id=worker_id, value=round(float(accuracy or 0) * 100)
        )
        pushed += 1
    with transaction.atomic():
        record_audit_event(
            actor=actor, action="mturk.scores_pushed", object_type="job", object_id=job.pk, after={"workers": pushed}
        )
    return pushed


def soft_block_mturk_worker(
    *, worker: Worker, reason: str, actor: Actor, connector: MTurkMarketplace | None = None
) -> MTurkQualificationType:
    """Keep a worker off our HITs with the block qualification (every HIT type requires it not to exist),
    rather than CreateWorkerBlock, which counts against the worker's standing on all of MTurk."""
    if worker.marketplace != MTURK:
        raise ServiceError(f"Worker {worker.pk} is not an MTurk worker.")
    connector = mturk_connector(connector)
    block = MTurkQualificationType.objects.filter(purpose=MTurkQualificationPurpose.BLOCK).first()
    if block is None:
        type_id = connector.create_qualification_type(
            name=BLOCK_NAME, description="Workers holding this are not offered this requester's HITs."
        )
        block = _remember(purpose=MTurkQualificationPurpose.BLOCK, type_id=type_id, name=BLOCK_NAME, actor=actor)
    connector.associate_qualification(type_id=block.type_id, worker_id=worker.external_id, value=1)
    with transaction.atomic():
        record_audit_event(
            actor=actor, action="mturk.worker_soft_blocked", object_type="worker", object_id=worker.pk, reason=reason
        )
    return block


def notify_mturk_workers(
    *, workers: Sequence[Worker], subject: str, message: str, actor: Actor, connector: MTurkMarketplace | None = None
) -> dict[str, str]:
    """Message MTurk workers; returns {MTurk WorkerId: why it failed} for those MTurk could not reach.

    The trail gets one ``mturk.workers_notified`` event per worker (``object_type="worker"``, our pk: the
    worker's History), sharing a ``batch`` id and the batch size, with ``delivered`` and MTurk's ``failure``
    for each. WorkerIds are personal data and sealed events are never rewritten, so none goes into them
    (see ``Actor.from_worker``), not even inside MTurk's failure messages."""
    ours = {w.external_id: w.pk for w in workers if w.marketplace == MTURK}
    if not ours:
        raise ServiceError("None of these workers is on MTurk.")
    if not subject.strip() or not message.strip():
        raise ServiceError("A message to workers needs a subject and a text.")
    failed = mturk_connector(connector).notify_workers(subject=subject, message=message, worker_ids=list(ours))
    batch = uuid.uuid4().hex
    events = [
        QueuedEvent(
            actor,
            "mturk.workers_notified",
            "worker",
            pk,
            after={
                "subject": subject,
                "batch": batch,
                "workers": len(ours),
                "delivered": external_id not in failed,
                **({"failure": _without_ids(failed[external_id], ours)} if external_id in failed else {}),
            },
        )
        for external_id, pk in sorted(ours.items(), key=lambda pair: pair[1])
    ]
    with transaction.atomic():
        record_audit_events(events)
    return failed


def _without_ids(text: str, ours: dict[str, int]) -> str:
    """MTurk's failure message with any WorkerId in it replaced by our own name for the worker."""
    for external_id in sorted(filter(None, ours), key=len, reverse=True):  # longest first: no id inside another
        text = text.replace(external_id, f"worker {ours[external_id]}")
    return text[:255]
