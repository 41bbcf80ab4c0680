"""Bringing MTurk work back: polling (ListReviewableHITs / ListAssignmentsForHIT) and SQS notifications.

Both end in ``record_external_assignments`` (upsert on the AssignmentId), the only way MTurk work becomes an
assignment here: answers posted on our ExternalQuestion page are only a claim until MTurk lists the assignment
(``tasks.services.mturk_task_page``), which confirms it. Assignments MTurk approved on its
own (auto-approval) get their charge booked here, with the same ledger keys an approval through us uses
(``tasks.services.ledger.assignment_cost_key``), so an assignment is charged once whichever path sees it first.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from tasks.models import (
    Assignment,
    AssignmentState,
    Hit,
    HitState,
    Job,
    MTurkHit,
    MTurkNotification,
)
from tasks.selectors_mturk import hit_places
from tasks.services.adaptive_queue import request_adaptive_allocation
from tasks.services.budget import after_review
from tasks.services.collection import complete_job_if_done, job_completed_event
from tasks.services.external_work import ExternalAssignment, RecordResult, record_external_assignments
from tasks.services.mturk_common import MTURK, answers_by_item, mturk_connector
from tasks.services.mturk_escrow import release_rejected_slots, release_unfilled_mturk_slots
from tasks.services.mturk_task_page import confirm_page_submissions
from workforce.audit import Actor, record_audit_event
from workforce.marketplaces.base import AssignmentRecord, MarketplaceError
from workforce.marketplaces.mturk import MTurkMarketplace
from workforce.marketplaces.mturk.documents import parse_notification

ASSIGNMENT_EVENTS = frozenset({"AssignmentSubmitted", "AssignmentApproved", "AssignmentRejected"})
POLL_OPEN_HITS = 500


@dataclass
class CollectResult:
    hits_polled: int = 0
    assignments_created: int = 0
    assignments_updated: int = 0
    charges_booked: int = 0
    slots_released: int = 0
    jobs_completed: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def add(self, part: RecordResult) -> None:
        self.assignments_created += part.assignments_created
        self.assignments_updated += part.assignments_updated
        self.skipped += part.skipped


def _external(job: Job, record: AssignmentRecord, places: list[str]) -> ExternalAssignment:
    state = record.status if record.status in AssignmentState.values else AssignmentState.SUBMITTED
    return ExternalAssignment(
        external_assignment_id=record.external_assignment_id,
        external_hit_id=record.external_hit_id,
        external_worker_id=record.external_worker_id,
        answers=answers_by_item(job, dict(record.answers), places),
        state=state,
        accepted_at=record.accepted_at,
        submitted_at=record.submitted_at,
        reviewed_at=timezone.now() if state in (AssignmentState.APPROVED, AssignmentState.REJECTED) else None,
    )


def record_mturk_assignments(*, records: Iterable[AssignmentRecord], actor: Actor, source: str) -> CollectResult:
    """Record assignments of our HITs (others are skipped with a reason), grouped by job, then book the
    charges of those MTurk reports as approved."""
    from tasks.services.mturk_review import book_approval_charges_in_bulk

    result = CollectResult()
    records = list(records)
    hits = {
        h.external_id: h
        for h in Hit.objects.filter(
            marketplace=MTURK, external_id__in={r.external_hit_id for r in records}
        ).select_related("job")
    }
    places = hit_places(h.pk for h in hits.values())
    by_job: dict[int, list[AssignmentRecord]] = defaultdict(list)
    jobs: dict[int, Job] = {}
    for record in records:
        hit = hits.get(record.external_hit_id)
        if hit is None:
            result.skipped.append((record.external_assignment_id, f"HIT {record.external_hit_id} is not ours"))
            continue
        by_job[hit.job_id].append(record)
        jobs[hit.job_id] = hit.job
    for job_id, job_records in by_job.items():
        job = jobs[job_id]
        with transaction.atomic():
            # The HITs whose slots approvals settle are locked before the audit head, as an approval does.
            approved_hits = {hits[r.external_hit_id].pk for r in job_records if r.status == AssignmentState.APPROVED}
            list(Hit.objects.select_for_update().filter(pk__in=approved_hits).order_by("pk").values_list("pk"))
            externals = [_external(job, r, places.get(hits[r.external_hit_id].pk, [])) for r in job_records]
            part = record_external_assignments(
                job=job,
                marketplace=MTURK,
                records=externals,
                actor=actor,
                source=source,
            )
            result.add(part)
            confirm_page_submissions(
                ((r.external_assignment_id, r.external_worker_id, r.external_hit_id) for r in job_records),
                at=timezone.now(),
            )
            if job.is_adaptive:  # completed HITs may want one more assignment (ranked, within budget)
                transaction.on_commit(partial(request_adaptive_allocation, job_id=job.pk))
            approved = [r.external_assignment_id for r in job_records if r.status == AssignmentState.APPROVED]
            # The batch's ledger keys are read at once and only the missing rows booked, in bulk.
            approvals = (
                Assignment.objects.filter(marketplace=MTURK, external_id__in=approved, state=AssignmentState.APPROVED)
                .select_related("hit", "job")
                .order_by("pk")  # the lowest open slot of a HIT to its first assignment, whatever the plan
            )
            booked = book_approval_charges_in_bulk(assignments=list(approvals))
            result.charges_booked += booked
        # Every HIT has all its assignments: the job is done (before the budget step, which settles done jobs).
        with transaction.atomic():
            completed = complete_job_if_done(job.pk, timezone.now())
            if completed:
                record_audit_event(
                    actor=actor, **job_completed_event(job.pk, "Every MTurk HIT has all the assignments it wants.")
                )
                result.jobs_completed += 1
        rejected = [r.external_assignment_id for r in job_records if r.status == AssignmentState.REJECTED]
        # Their own transaction: the Hit and job rows are locked before the audit head (the budget lock order).
        if booked or rejected or completed:
            with transaction.atomic():
                released = _release_rejected(job, rejected, actor=actor)
                result.slots_released += released
                if booked or released or completed:
                    after_review(job=job, actor=actor)
    return result


def _release_rejected(job: Job, external_ids: list[str], *, actor: Actor) -> int:
    """Work MTurk reports as rejected (by us, with a lost reply, or on MTurk's site) gives its slot's money
    back once (``release_rejected_slots`` is keyed by the assignment); returns the slots released now."""
    if not external_ids:
        return 0
    rejected = Assignment.objects.filter(
        marketplace=MTURK, external_id__in=external_ids, state=AssignmentState.REJECTED
    ).order_by("hit_id", "pk")
    return release_rejected_slots(job=job, assignments=list(rejected), actor=actor)


def collect_mturk_hits(
    *, external_hit_ids: Sequence[str], actor: Actor, connector: MTurkMarketplace | None = None
) -> CollectResult:
    connector = mturk_connector(connector)
    records: list[AssignmentRecord] = []
    for hit_id in external_hit_ids:
        records.extend(connector.list_assignments(hit_id))
    result = record_mturk_assignments(records=records, actor=actor, source="mturk:poll")
    result.hits_polled = len(external_hit_ids)
    return result


def collect_mturk_work(*, actor: Actor, connector: MTurkMarketplace | None = None) -> CollectResult:
    """Celery beat: every reviewable HIT MTurk lists, plus our open HITs (submitted work arrives before a HIT
    is reviewable, and the auto-approval guard needs it early); then the expiry pass
    (``mturk_escrow.release_unfilled_mturk_slots``)."""
    connector = mturk_connector(connector)
    reviewable = list(connector.list_reviewable_hits())
    # The open HITs polled least recently first, so every one is polled in turn however many there are.
    open_ids = list(
        Hit.objects.filter(marketplace=MTURK, external_id__isnull=False, state__in=[HitState.OPEN, HitState.FULL])
        .order_by(F("mturk__polled_at").asc(nulls_first=True), "id")
        .values_list("external_id", flat=True)[:POLL_OPEN_HITS]
    )
    ids = [str(i) for i in dict.fromkeys([*reviewable, *open_ids])]
    result = collect_mturk_hits(external_hit_ids=ids, actor=actor, connector=connector)
    # Expired HITs give back the money of their unfilled slots (after the work above is recorded).
    result.slots_released += release_unfilled_mturk_slots(actor=actor, connector=connector).slots_released
    MTurkHit.objects.filter(hit__marketplace=MTURK, hit__external_id__in=ids).update(polled_at=timezone.now())
    return result


@dataclass
class NotificationResult:
    messages: int = 0
    duplicates: int = 0
    assignments_created: int = 0
    ignored: int = 0


def consume_mturk_notifications(
    *,
    sqs: Any,
    queue_url: str,
    actor: Actor,
    connector: MTurkMarketplace | None = None,
    max_messages: int = 10,
    wait_seconds: int = 0,
) -> NotificationResult:
    """Read one batch of MTurk's SQS messages. A message already seen (same ``EventDocId``) is only deleted;
    a new one's assignments are fetched (GetAssignment) and recorded together with its dedupe row, then the
    message is deleted. A failure leaves the message on the queue, which delivers it again."""
    connector = mturk_connector(connector)
    result = NotificationResult()
    reply = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=wait_seconds)
    for message in reply.get("Messages", []):
        result.messages += 1
        try:
            notification = parse_notification(message.get("Body", ""))
        except MarketplaceError:
            result.ignored += 1
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            continue
        if MTurkNotification.objects.filter(event_doc_id=notification.event_doc_id).exists():
            result.duplicates += 1
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            continue
        ids = [e.assignment_id for e in notification.events if e.event_type in ASSIGNMENT_EVENTS and e.assignment_id]
        records = [connector.get_assignment(a) for a in dict.fromkeys(ids)]
        with transaction.atomic():
            _, created = MTurkNotification.objects.get_or_create(
                event_doc_id=notification.event_doc_id,
                defaults={
                    "events": [
                        {"type": e.event_type, "hit": e.hit_id, "assignment": e.assignment_id}
                        for e in notification.events
                    ],
                    "received_at": timezone.now(),
                },
            )
            if created:
                part = record_mturk_assignments(records=records, actor=actor, source="mturk:sqs")
                result.assignments_created += part.assignments_created
            else:
                result.duplicates += 1
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return result
