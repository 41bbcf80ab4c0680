"""Work done on another marketplace (MTurk, Ground Truth, a results file) recorded as our own rows.

``record_external_assignments`` is the one path for every connector's collect step and every importer:
it upserts workers, Hits and assignments on the marketplace's ids and adds the answers, set-based, in
one transaction. Running it again with the same records changes nothing (an assignment whose status
moved on, e.g. submitted -> approved, gets the new status). Records it cannot take are returned with the
reason instead of failing the batch, so an importer can report them.

``restate`` (a results file, MTurk's own record of the work) also takes what a later download says differently:
a review MTurk changed (a rejection overridden to approved, or the reverse) when the record's review time is
later than the one held, and an answer value that differs from the one held (its gold graded again). Each is
returned (``reviews_restated``, ``answers_restated``) and audited on its assignment; what they cost is the
caller's to book or reverse.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Count, F, OuterRef, Subquery
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from tasks.models import (
    DONE_ASSIGNMENT_STATES,
    LIVE_ASSIGNMENT_STATES,
    Answer,
    Assignment,
    AssignmentState,
    GoldGrade,
    Hit,
    HitItem,
    HitState,
    Item,
    Job,
)
from tasks.services.collection import validate_value
from tasks.services.errors import SubmissionRefused
from tasks.services.quality import grade_gold_in_bulk
from workforce.audit import Actor, QueuedEvent, queue_audit_events, record_audit_event
from workforce.models import Worker
from workforce.services import get_or_create_workers

_BATCH = 2000
_REVIEWED = (AssignmentState.APPROVED, AssignmentState.REJECTED)


@dataclass(frozen=True)
class ExternalAssignment:
    """One worker's finished take on one remote HIT. ``answers`` maps item external id -> value."""

    external_assignment_id: str
    external_hit_id: str
    external_worker_id: str
    answers: Mapping[str, Any]
    state: str = AssignmentState.SUBMITTED
    accepted_at: datetime | None = None
    submitted_at: datetime | None = None
    reviewed_at: datetime | None = None
    reward: Decimal | None = None


@dataclass
class RecordResult:
    assignments_created: int = 0
    assignments_updated: int = 0
    assignments_unchanged: int = 0
    answers_created: int = 0
    hits_created: int = 0
    workers_created: int = 0
    created_assignment_ids: list[int] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (external assignment id, reason)
    # ``restate`` only: (external assignment id, state before, state now)
    reviews_restated: list[tuple[str, str, str]] = field(default_factory=list)
    # ``restate`` only: (external assignment id, item id, value before, value now)
    answers_restated: list[tuple[str, int, Any, Any]] = field(default_factory=list)


def _normalised_answers(job: Job, record: ExternalAssignment, item_ids: Mapping[str, int]) -> dict[int, Any]:
    values: dict[int, Any] = {}
    for external_item_id, value in record.answers.items():
        item_id = item_ids.get(str(external_item_id))
        if item_id is None:
            raise SubmissionRefused(f"it answers item {external_item_id!r}, which the job does not have")
        values[item_id] = validate_value(job, value)
    if not values:
        raise SubmissionRefused("it has no answer")
    return values


def _hit_ids(marketplace: str, external_ids: list[str]) -> dict[str, int]:
    rows = Hit.objects.filter(marketplace=marketplace, external_id__in=external_ids).values_list("external_id", "id")
    return {str(external_id): hit_id for external_id, hit_id in rows}


def _ensure_hits(
    *, job: Job, marketplace: str, wanted: Mapping[str, int], items_by_hit: Mapping[str, set[int]]
) -> tuple[dict[str, int], int]:
    """Hit ids by external id, creating the missing Hits (and their items' links) in bulk."""
    external_ids = list(wanted)
    hits = _hit_ids(marketplace, external_ids)
    missing = [eid for eid in external_ids if eid not in hits]
    if missing:
        Hit.objects.bulk_create(
            [
                Hit(
                    job=job,
                    marketplace=marketplace,
                    external_id=eid,
                    state=HitState.OPEN,
                    assignments_wanted=max(wanted[eid], job.redundancy),
                )
                for eid in missing
            ],
            batch_size=_BATCH,
            ignore_conflicts=True,
        )
        hits = _hit_ids(marketplace, external_ids)
    linked = set(HitItem.objects.filter(hit_id__in=hits.values()).values_list("hit_id", "item_id"))
    positions: dict[int, int] = {}
    for hit_id, _ in linked:
        positions[hit_id] = positions.get(hit_id, 0) + 1
    links: list[HitItem] = []
    for eid, item_ids in items_by_hit.items():
        hit_id = hits[eid]
        for item_id in sorted(item_ids):
            if (hit_id, item_id) not in linked:
                links.append(HitItem(hit_id=hit_id, item_id=item_id, position=positions.get(hit_id, 0)))
                positions[hit_id] = positions.get(hit_id, 0) + 1
    HitItem.objects.bulk_create(links, batch_size=_BATCH, ignore_conflicts=True)
    return hits, len(missing)


def _refresh_hit_counters(hit_ids: Iterable[int]) -> None:
    """Recount slots and submissions of ``hit_ids`` from their assignments and settle their state.

    Two set-based statements whatever the number of Hits (every right-hand side reads the old row)."""
    ids = list(hit_ids)

    def count(states: tuple[str, ...]) -> Coalesce:
        per_hit = (
            Assignment.objects.filter(hit_id=OuterRef("pk"), state__in=states)
            .order_by()
            .values("hit_id")
            .annotate(n=Count("id"))
            .values("n")
        )
        return Coalesce(Subquery(per_hit), 0)

    for start in range(0, len(ids), _BATCH):
        batch = ids[start : start + _BATCH]
        Hit.objects.filter(id__in=batch).update(
            assignments_wanted=Greatest(F("assignments_wanted"), count(LIVE_ASSIGNMENT_STATES)),
            slots_taken=count(LIVE_ASSIGNMENT_STATES),
            assignments_submitted=count(DONE_ASSIGNMENT_STATES),
        )
        Hit.objects.filter(
            id__in=batch,
            state__in=(HitState.OPEN, HitState.FULL, HitState.DRAFT),
            assignments_submitted__gte=F("assignments_wanted"),
        ).update(state=HitState.COMPLETE)


def owned_by_other_jobs(job: Job, marketplace: str, records: list[ExternalAssignment]) -> dict[str, str]:
    """Records whose assignment or HIT id is already another job's, with the reason (ids are global)."""
    hits = dict(
        Hit.objects.filter(marketplace=marketplace, external_id__in={r.external_hit_id for r in records})
        .exclude(job=job)
        .values_list("external_id", "job_id")
    )
    assignments = dict(
        Assignment.objects.filter(marketplace=marketplace, external_id__in=[r.external_assignment_id for r in records])
        .exclude(job=job)
        .values_list("external_id", "job_id")
    )
    reasons: dict[str, str] = {}
    for record in records:
        if record.external_assignment_id in assignments:
            owner = assignments[record.external_assignment_id]
            reasons[record.external_assignment_id] = (
                f"assignment {record.external_assignment_id} belongs to job {owner}"
            )
        elif record.external_hit_id in hits:
            owner = hits[record.external_hit_id]
            reasons[record.external_assignment_id] = f"HIT {record.external_hit_id} belongs to job {owner}"
    return reasons


def _restates_review(current: Assignment, record: ExternalAssignment) -> bool:
    """Whether ``record`` is a later review of reviewed work than the one held (an older download never undoes)."""
    return (
        current.state in _REVIEWED
        and record.state in _REVIEWED
        and current.state != record.state
        and record.reviewed_at is not None
        and (current.reviewed_at is None or record.reviewed_at > current.reviewed_at)
    )


def _restate_answers(
    *,
    job: Job,
    valid: list[tuple[ExternalAssignment, dict[int, Any]]],
    held: Mapping[str | None, Assignment],
    now: datetime,
) -> list[tuple[str, int, Any, Any]]:
    """Give assignments already recorded the answer values their records hold now; their gold is graded again."""
    by_pk = {held[r.external_assignment_id].pk: (r, values) for r, values in valid if r.external_assignment_id in held}
    changed: list[Answer] = []
    restated: list[tuple[str, int, Any, Any]] = []
    for answer in Answer.objects.filter(assignment_id__in=list(by_pk)).only("id", "assignment_id", "item_id", "value"):
        record, values = by_pk[answer.assignment_id]
        if answer.item_id in values and values[answer.item_id] != answer.value:
            restated.append((record.external_assignment_id, answer.item_id, answer.value, values[answer.item_id]))
            answer.value = values[answer.item_id]
            changed.append(answer)
    Answer.objects.bulk_update(changed, ["value"], batch_size=_BATCH)
    regrade = sorted(
        set(
            Answer.objects.filter(pk__in=[a.pk for a in changed], item__is_gold=True).values_list(
                "assignment_id", flat=True
            )
        )
    )
    if regrade:
        GoldGrade.objects.filter(answer__assignment_id__in=regrade).delete()
        grade_gold_in_bulk(job=job, assignment_ids=regrade, now=now)
    return restated


def record_external_assignments(
    *,
    job: Job,
    marketplace: str,
    records: Iterable[ExternalAssignment],
    actor: Actor,
    source: str = "",
    restate: bool = False,
) -> RecordResult:
    """Upsert ``records`` (all from ``marketplace``) into ``job``; see the module docstring."""
    result = RecordResult()
    records = list({r.external_assignment_id: r for r in records}.values())  # the last copy of an id wins
    if not records:
        return result
    item_ids = dict(Item.objects.filter(job=job).values_list("external_id", "id"))
    elsewhere = owned_by_other_jobs(job, marketplace, records)
    valid: list[tuple[ExternalAssignment, dict[int, Any]]] = []
    for record in records:
        if record.external_assignment_id in elsewhere:
            result.skipped.append((record.external_assignment_id, elsewhere[record.external_assignment_id]))
            continue
        try:
            valid.append((record, _normalised_answers(job, record, item_ids)))
        except SubmissionRefused as refusal:
            result.skipped.append((record.external_assignment_id, str(refusal).rstrip(".")))
    if not valid:
        return result
    now = timezone.now()
    with transaction.atomic():
        worker_ids = [r.external_worker_id for r, _ in valid]
        known = set(
            Worker.objects.filter(marketplace=marketplace, external_id__in=worker_ids).values_list(
                "external_id", flat=True
            )
        )
        workers = get_or_create_workers(marketplace=marketplace, external_ids=worker_ids)
        result.workers_created = len(set(worker_ids) - known)

        wanted: dict[str, int] = {}
        items_by_hit: dict[str, set[int]] = {}
        for record, values in valid:
            wanted[record.external_hit_id] = wanted.get(record.external_hit_id, 0) + 1
            items_by_hit.setdefault(record.external_hit_id, set()).update(values)
        hits, result.hits_created = _ensure_hits(
            job=job, marketplace=marketplace, wanted=wanted, items_by_hit=items_by_hit
        )

        existing = {
            a.external_id: a
            for a in Assignment.objects.filter(
                marketplace=marketplace, external_id__in=[r.external_assignment_id for r, _ in valid]
            ).only("id", "external_id", "state", "reviewed_at", "hit_id")
        }
        new_rows: list[Assignment] = []
        changed: list[Assignment] = []
        previous: dict[int, str] = {}
        for record, _ in valid:
            current = existing.get(record.external_assignment_id)
            if current is None:
                submitted = record.submitted_at or now
                new_rows.append(
                    Assignment(
                        hit_id=hits[record.external_hit_id],
                        job=job,
                        worker=workers[record.external_worker_id],
                        state=record.state,
                        marketplace=marketplace,
                        external_id=record.external_assignment_id,
                        accepted_at=record.accepted_at or submitted,
                        lease_expires_at=submitted,
                        submitted_at=submitted,
                        reviewed_at=record.reviewed_at,
                        reward=record.reward if record.reward is not None else job.reward,
                    )
                )
            elif current.state != record.state and current.state not in (
                AssignmentState.APPROVED,
                AssignmentState.REJECTED,
            ):
                previous[current.pk] = current.state
                current.state = record.state
                current.reviewed_at = record.reviewed_at or current.reviewed_at
                changed.append(current)
            elif restate and _restates_review(current, record):
                previous[current.pk] = current.state
                result.reviews_restated.append((record.external_assignment_id, current.state, record.state))
                current.state, current.reviewed_at = record.state, record.reviewed_at
                changed.append(current)
            else:
                result.assignments_unchanged += 1
        Assignment.objects.bulk_create(new_rows, batch_size=_BATCH, ignore_conflicts=True)
        Assignment.objects.bulk_update(changed, ["state", "reviewed_at"], batch_size=_BATCH)
        result.assignments_updated = len(changed)

        created = dict(
            Assignment.objects.filter(
                marketplace=marketplace, external_id__in=[a.external_id for a in new_rows]
            ).values_list("external_id", "id")
        )
        result.assignments_created = len(created)
        result.created_assignment_ids = sorted(created.values())
        # Each assignment's own history (its admin History page): queued, sealed into the chain in the
        # background, so a large file costs one insert here.
        queue_audit_events(
            [
                QueuedEvent(
                    actor,
                    "assignment.recorded",
                    "assignment",
                    created[record.external_assignment_id],
                    after={"state": record.state, "marketplace": marketplace, "source": source},
                )
                for record, _ in valid
                if record.external_assignment_id in created
            ]
            + [
                QueuedEvent(
                    actor,
                    "assignment.state_recorded",
                    "assignment",
                    row.pk,
                    before={"state": previous[row.pk]},
                    after={"state": row.state, "marketplace": marketplace, "source": source},
                )
                for row in changed
            ]
        )
        answers = [
            Answer(
                assignment_id=created[record.external_assignment_id],
                item_id=item_id,
                job=job,
                worker=workers[record.external_worker_id],
                value=value,
            )
            for record, values in valid
            if record.external_assignment_id in created
            for item_id, value in values.items()
        ]
        Answer.objects.bulk_create(answers, batch_size=_BATCH, ignore_conflicts=True)
        result.answers_created = len(answers)
        if restate:
            result.answers_restated = _restate_answers(job=job, valid=valid, held=existing, now=now)
            queue_audit_events(
                [
                    QueuedEvent(
                        actor,
                        "answer.restated",
                        "assignment",
                        existing[external_id].pk,
                        before={"item": item_id, "value": before},
                        after={"item": item_id, "value": after, "marketplace": marketplace, "source": source},
                    )
                    for external_id, item_id, before, after in result.answers_restated
                ]
            )
        _refresh_hit_counters(hits.values())
        grade_gold_in_bulk(job=job, assignment_ids=result.created_assignment_ids, now=now)
        if result.assignments_created or result.assignments_updated or result.answers_restated:
            record_audit_event(
                actor=actor,
                action="assignments.recorded",
                object_type="job",
                object_id=job.pk,
                after={
                    "marketplace": marketplace,
                    "source": source,
                    "assignments_created": result.assignments_created,
                    "assignments_updated": result.assignments_updated,
                    "answers_created": result.answers_created,
                    "workers_created": result.workers_created,
                    "skipped": len(result.skipped),
                    **({"answers_restated": len(result.answers_restated)} if restate else {}),
                },
            )
    return result
