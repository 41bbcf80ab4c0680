"""The internal worker pool: handing out Hits as leases, returning them, expiring abandoned ones.

Rules that hold under any concurrency:
- a worker never gets the same Hit (so never the same item) twice: unique ``(hit, worker)`` plus the
  NOT EXISTS filter when choosing;
- a Hit never has more live assignments than it wants: ``slots_taken`` only grows through a
  conditional update ``slots_taken < assignments_wanted``;
- on PostgreSQL, concurrent workers never wait on each other to be handed work: candidate Hits are
  claimed with ``SELECT ... FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Case, Exists, F, OuterRef, Value, When
from django.utils import timezone

from qualification.gold_placement import choose_gold, gold_page_chance
from tasks.models import (
    Assignment,
    AssignmentGoldItem,
    AssignmentState,
    Hit,
    HitState,
    Job,
    JobBlock,
    JobState,
    WorkerJobScore,
)
from tasks.reports.estimate import unit_cost
from tasks.selectors import list_unseen_gold_ids, unmet_job_requirements
from tasks.services import hot_sql
from tasks.services.budget import BudgetExceeded, reserve_budget
from tasks.services.errors import NotQualified, NoWorkAvailable, ServiceError
from tasks.services.pool_sql import CLAIM_SQL, LEASE_LOCK_SQL, lease_lock_key
from workforce.audit import (
    Actor,
    QueuedEvent,
    hot_statement_audit_params,
    queue_audit_event,
    queue_audit_events,
)
from workforce.models import Worker
from workforce.scoring import gold_evidence, gold_hand_out_rate


def _current_lease(*, job: Job, worker: Worker, now: datetime) -> Assignment | None:
    return (
        Assignment.objects.filter(job=job, worker=worker, state=AssignmentState.ACCEPTED, lease_expires_at__gt=now)
        .order_by("id")
        .first()
    )


_NOTHING_OPEN = "nothing-open"


def _new_lease(*, job: Job, worker: Worker, now: datetime) -> Assignment:
    """An accepted assignment of ``job`` for ``worker`` (unsaved, no Hit yet), paid the job's reward."""
    return Assignment(
        uuid=uuid.uuid4(),
        job=job,
        worker=worker,
        state=AssignmentState.ACCEPTED,
        marketplace=job.marketplace,
        accepted_at=now,
        lease_expires_at=now + job.assignment_duration,
        reward=job.reward,
        instructions_version=job.instructions_version or None,  # the version this worker is shown
    )


def _audit_accepted(lease: Assignment, worker: Worker) -> None:
    """The accept event, queued in the claiming transaction (no chain lock on the hot path).

    The PostgreSQL claim statement writes the same event itself (``audited`` in ``pool_sql.CLAIM_SQL``).
    """
    queue_audit_event(
        actor=Actor.from_worker(worker),
        action="assignment.accepted",
        object_type="assignment",
        object_id=lease.pk,
        after={
            "state": AssignmentState.ACCEPTED.value,
            "job": lease.job_id,
            "hit": lease.hit_id,
            "lease_expires_at": lease.lease_expires_at.isoformat(),
        },
        created_at=lease.accepted_at,
    )


@dataclass(frozen=True)
class _GoldPlacing:
    """Placing gold on a multi-item page at hand-out: the worker's unseen gold items and the page size."""

    fresh: list[int]
    page_size: int
    rng: random.Random


# PostgreSQL: a new lease's gold places in one statement, run for every new lease of a multi-item job
# (also with no gold to place), so a page's hand-out costs the same whether or not it holds gold.
_PLACE_GOLD_SQL = """
INSERT INTO tasks_assignmentgolditem (assignment_id, worker_id, item_id, position)
SELECT %(assignment)s, %(worker)s, x.item_id, x.position
FROM unnest(%(items)s::bigint[], %(positions)s::int[]) AS x(item_id, position)
"""


def _place_gold(lease: Assignment, slots: int, placing: _GoldPlacing) -> None:
    """Fill the new lease's ``slots`` gold places with gold the worker has not seen, at random places."""
    chosen = choose_gold(fresh=placing.fresh, slots=slots, page_size=placing.page_size, rng=placing.rng)
    if connection.vendor == "postgresql":
        hot_sql.execute(
            _PLACE_GOLD_SQL,
            {
                "assignment": lease.pk,
                "worker": lease.worker_id,
                "items": [item for item, _ in chosen],
                "positions": [place for _, place in chosen],
            },
        )
    elif chosen:
        AssignmentGoldItem.objects.bulk_create(
            [
                AssignmentGoldItem(assignment_id=lease.pk, worker_id=lease.worker_id, item_id=item, position=place)
                for item, place in chosen
            ]
        )


def _claim_open_hit_postgres(
    *, job: Job, worker: Worker, now: datetime, gold: bool, placing: _GoldPlacing | None
) -> Assignment | str | None:
    lease = _new_lease(job=job, worker=worker, now=now)
    params: dict[str, Any] = {
        "job": job.pk,
        "worker": worker.pk,
        "uuid": lease.uuid,
        "marketplace": lease.marketplace,
        "now": now,
        "expires": lease.lease_expires_at,
        "reward": lease.reward,
        "instructions_version": lease.instructions_version,
        "expires_iso": lease.lease_expires_at.isoformat(),
        "max_slots": len(placing.fresh) if placing is not None else 0,
        **hot_statement_audit_params(Actor.from_worker(worker)),
    }
    try:
        with transaction.atomic():
            # One claim at a time per (job, worker): the claim statement's snapshot is taken when it starts,
            # so two tabs claiming at once could each miss the other's new lease and both get one. The lock
            # is taken by its own statement, before that snapshot, and held to the end of the transaction.
            hot_sql.execute(LEASE_LOCK_SQL, {"key": lease_lock_key(job.pk, worker.pk)})
            row = hot_sql.fetch_one(CLAIM_SQL[gold], params)
            assert row is not None  # the statement always returns one row
            found, assignment_id, lease_uuid, hit_id, accepted_at, expires_at, slots = row
            if assignment_id is None:
                if not found:
                    return _NOTHING_OPEN
                # Lost a race (the Hit filled up, or this worker claimed it from another tab): undo, retry.
                transaction.set_rollback(True)
                return None
            # Either the worker's current lease or the one just created (``slots`` is set for a new one only).
            lease.pk, lease.uuid, lease.hit_id = assignment_id, lease_uuid, hit_id
            lease.accepted_at, lease.lease_expires_at = accepted_at, expires_at
            if slots is not None and placing is not None:
                _place_gold(lease, slots, placing)
    except IntegrityError:
        return None  # the worker's other tab placed the same gold item a moment ago: try again
    lease._state.adding = False
    lease._state.db = connection.alias
    return lease


def _claim_open_hit(
    *, job: Job, worker: Worker, now: datetime, gold: bool = False, placing: _GoldPlacing | None = None
) -> Assignment | str | None:
    """Lease one open Hit; None when a race was lost (try again), ``_NOTHING_OPEN`` when none is left.

    With ``placing`` (multi-item jobs) only Hits whose gold places the worker's unseen gold can fill are
    candidates, and the new lease gets its gold in the same transaction.
    """
    if connection.vendor == "postgresql":
        return _claim_open_hit_postgres(job=job, worker=worker, now=now, gold=gold, placing=placing)
    # Portable path (SQLite serialises writers, so the steps below cannot interleave there).
    with transaction.atomic():
        if JobBlock.objects.filter(job_id=job.pk, worker_id=worker.pk, lifted_at__isnull=True).exists():
            return _NOTHING_OPEN
        candidates = (
            Hit.objects.filter(
                job_id=job.pk,
                state=HitState.OPEN,
                is_gold=gold,
                gold_slots__lte=len(placing.fresh) if placing is not None else 0,
            )
            .filter(~Exists(Assignment.objects.filter(hit_id=OuterRef("pk"), worker_id=worker.pk)))
            .order_by("priority", "id")
        )
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True)
        candidate = candidates.values_list("id", "gold_slots").first()
        if candidate is None:
            return _NOTHING_OPEN
        hit_id, slots = candidate
        claimed = Hit.objects.filter(pk=hit_id, state=HitState.OPEN, slots_taken__lt=F("assignments_wanted")).update(
            slots_taken=F("slots_taken") + 1,
            state=Case(
                When(slots_taken__gte=F("assignments_wanted") - 1, then=Value(HitState.FULL)),
                default=Value(HitState.OPEN),
            ),
        )
        if not claimed:
            return None
        try:
            with transaction.atomic():
                lease = _new_lease(job=job, worker=worker, now=now)
                lease.hit_id = hit_id
                lease.save(force_insert=True)
                if placing is not None:
                    _place_gold(lease, slots, placing)
                _audit_accepted(lease, worker)
                return lease
        except IntegrityError:
            # The same worker claimed this Hit (or placed this gold) from another tab at the same moment.
            transaction.set_rollback(True)
            return None


_random = random.SystemRandom()


def _gold_rate_for(*, job: Job, worker: Worker) -> float:
    """The job's gold rate, boosted while the block policy has not yet decided about ``worker``.

    Reads the worker's score only when the job boosts gold, so the usual hand-out stays one statement.
    """
    if job.gold_boost_until <= 0 or job.gold_boost_rate <= job.gold_rate:
        return job.gold_rate
    row = (
        WorkerJobScore.objects.filter(job_id=job.pk, worker_id=worker.pk)
        .values_list("gold_answers", "gold_score")
        .first()
    )
    n, right = row if row is not None else (0, 0.0)
    evidence = gold_evidence(
        right, n, n_labels=len(job.labels), floor=job.block_below_accuracy, min_gold=job.block_after_gold
    )
    return gold_hand_out_rate(
        base_rate=job.gold_rate,
        boost_rate=job.gold_boost_rate,
        boost_until=job.gold_boost_until,
        gold_answers=n,
        # Only a clear verdict ends the boost: "block" here is the gold-only test, while the job's block
        # decision also weighs peer agreement, at other odds (``tasks.services.quality``).
        decision="clear" if evidence.decision == "clear" else "undecided",
    )


def _give_up_gold_places(*, job: Job, worker: Worker, can_fill: int) -> bool:
    """When ``worker`` has no other work, one open Hit they have not worked whose gold places their unseen
    gold cannot fill keeps only the places it can (its pages get shorter): once the crowd has seen most of
    the gold set, such Hits would otherwise stay open for ever. Returns whether a Hit changed."""
    if JobBlock.objects.filter(job_id=job.pk, worker_id=worker.pk, lifted_at__isnull=True).exists():
        return False
    hit_id = (
        Hit.objects.filter(job_id=job.pk, state=HitState.OPEN, is_gold=False, gold_slots__gt=can_fill)
        .filter(~Exists(Assignment.objects.filter(hit_id=OuterRef("pk"), worker_id=worker.pk)))
        .order_by("priority", "id")
        .values_list("id", flat=True)
        .first()
    )
    if hit_id is None:
        return False
    return bool(Hit.objects.filter(pk=hit_id, gold_slots__gt=can_fill).update(gold_slots=can_fill))


def assign_next_hit(
    *, job: Job, worker: Worker, now: datetime | None = None, rng: random.Random | None = None
) -> Assignment:
    """Give ``worker`` a lease on the next Hit of ``job`` they have not worked, or their current lease.

    One item per Hit: with probability ``job.gold_rate`` the lease is a gold Hit the worker has not seen
    (when one is left), so gold questions land at random places in each worker's stream; while the block
    policy is undecided about the worker, with the job's boosted rate instead (``gold_boost_rate`` /
    ``gold_boost_until``). Several items per Hit: the Hit's gold places are filled with gold the worker
    has not seen, at random places on the page, and a boosted rate adds all-gold pages; Hits whose gold
    places the worker's unseen gold cannot fill are passed over, and when nothing else is left one of them
    gives up the places it cannot fill (``_give_up_gold_places``).
    Raises ``NoWorkAvailable`` with a sentence when there is nothing for them.
    """
    now = now or timezone.now()
    if worker.is_blocked:
        raise ServiceError("Your account is blocked from new work.")
    if job.state != JobState.PUBLISHED:
        raise NoWorkAvailable(f"“{job.name}” is {job.get_state_display().lower()}; it has no work to hand out.")
    if job.marketplace != "internal":  # its Hits are worked on that marketplace (e.g. MTurk), not here
        raise NoWorkAvailable(f"“{job.name}” is worked on {job.get_marketplace_display()}, not in this pool.")
    unmet = unmet_job_requirements(job, worker)
    if unmet:
        raise NotQualified(" ".join(unmet))
    if connection.vendor != "postgresql":  # on PostgreSQL the claim statement checks this itself
        current = _current_lease(job=job, worker=worker, now=now)
        if current is not None:
            return current
    rate = _gold_rate_for(job=job, worker=worker)
    rng = rng or _random
    placing: _GoldPlacing | None = None
    if job.items_per_hit > 1:
        # Gold is mixed into pages (``tasks.services.hits``); a boost above the job's rate adds pages that
        # are all gold.
        placing = _GoldPlacing(fresh=list_unseen_gold_ids(job=job, worker=worker), page_size=job.items_per_hit, rng=rng)
        chance = gold_page_chance(worker_rate=rate, job_rate=job.gold_rate)
        if chance > 0 and len(placing.fresh) >= job.items_per_hit and rng.random() < chance:
            claim = _claim_gold(job=job, worker=worker, now=now, placing=placing)
            if isinstance(claim, Assignment):
                return claim
    elif rate > 0 and rng.random() < rate:
        claim = _claim_gold(job=job, worker=worker, now=now)
        if isinstance(claim, Assignment):
            return claim
    reclaimed = False
    for _ in range(5):
        claim = _claim_open_hit(job=job, worker=worker, now=now, placing=placing)
        if isinstance(claim, Assignment):
            return claim
        if claim == _NOTHING_OPEN:
            # Abandoned leases go back to the pool here too, so work never waits for the next sweep.
            if reclaimed or not expire_leases(now=now, job=job):
                break
            reclaimed = True
        elif claim is None and placing is not None:  # a lost race may have been over a gold item: re-read
            placing = replace(placing, fresh=list_unseen_gold_ids(job=job, worker=worker))
    if placing is not None and _give_up_gold_places(job=job, worker=worker, can_fill=len(placing.fresh)):
        claim = _claim_open_hit(job=job, worker=worker, now=now, placing=placing)
        if isinstance(claim, Assignment):
            return claim
    raise NoWorkAvailable(f"There is no more work for you in “{job.name}” right now.")


GOLD_BUDGET = Actor.system("gold hand-out")


def _claim_gold(
    *, job: Job, worker: Worker, now: datetime, placing: _GoldPlacing | None = None
) -> Assignment | str | None:
    """Lease a gold Hit within the budget. The publish reservation priced ``gold_leases_priced`` gold leases
    (the estimate's gold overhead at the job's own rate); a gold lease beyond them (a boost, or more gold
    than the rate's expectation) reserves its own cost as it is handed out, the lease and the reservation
    committing together (Hit row, then job row, as everywhere). When the budget has no room left the
    worker gets ordinary work instead (None)."""
    try:
        with transaction.atomic():
            claim = _claim_open_hit(job=job, worker=worker, now=now, gold=True, placing=placing)
            if not isinstance(claim, Assignment) or claim.accepted_at != now:  # none, or the current lease
                return claim
            priced = Job.objects.filter(pk=job.pk, gold_leases_priced__gt=0).update(
                gold_leases_priced=F("gold_leases_priced") - 1
            )
            if not priced:
                reserve_budget(
                    job=job,
                    amount=unit_cost(job),
                    key=f"job:{job.pk}:gold:{claim.uuid}",
                    actor=GOLD_BUDGET,
                    reason="gold beyond the publish estimate",
                    now=now,
                )
            return claim
    except BudgetExceeded:
        return None


def release_slots(hit_ids: list[int]) -> None:
    """Give back one slot per entry of ``hit_ids`` (a Hit may appear several times)."""
    counts = Counter(hit_ids)
    # Lock the Hits in id order so two sweeps never deadlock on each other.
    list(Hit.objects.select_for_update().filter(pk__in=counts).order_by("id").values_list("id", flat=True))
    by_count: dict[int, list[int]] = {}
    for hit_id, n in counts.items():
        by_count.setdefault(n, []).append(hit_id)
    for n, ids in by_count.items():
        Hit.objects.filter(pk__in=ids).update(
            slots_taken=F("slots_taken") - n,
            state=Case(When(state=HitState.FULL, then=Value(HitState.OPEN)), default=F("state")),
        )


def return_assignment(*, assignment: Assignment, worker: Worker) -> None:
    """The worker gives the Hit back (skip): the slot returns to the pool, not to this worker."""
    with transaction.atomic():
        returned = Assignment.objects.filter(pk=assignment.pk, worker=worker, state=AssignmentState.ACCEPTED).update(
            state=AssignmentState.RETURNED
        )
        if not returned:
            raise ServiceError("This task is no longer yours to return.")
        release_slots([assignment.hit_id])
        queue_audit_event(
            actor=Actor.from_worker(worker),
            action="assignment.returned",
            object_type="assignment",
            object_id=assignment.pk,
            before={"state": AssignmentState.ACCEPTED.value},
            after={"state": AssignmentState.RETURNED.value},
        )


def expire_leases(*, now: datetime | None = None, job: Job | None = None, limit: int = 5000) -> int:
    """Expire accepted assignments whose lease has run out and return their slots to the pool."""
    now = now or timezone.now()
    with transaction.atomic():
        due = Assignment.objects.filter(state=AssignmentState.ACCEPTED, lease_expires_at__lte=now)
        if job is not None:
            due = due.filter(job_id=job.pk)
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        rows = list(due.order_by("id").values_list("id", "hit_id")[:limit])
        if not rows:
            return 0
        Assignment.objects.filter(pk__in=[r[0] for r in rows], state=AssignmentState.ACCEPTED).update(
            state=AssignmentState.EXPIRED
        )
        release_slots([r[1] for r in rows])
        sweeper = Actor.system("lease-sweeper")
        why = "The lease ran out before the worker submitted."
        queue_audit_events(
            [
                assignment_state_event(
                    sweeper, assignment_id, AssignmentState.ACCEPTED, AssignmentState.EXPIRED, why, created_at=now
                )
                for assignment_id, _hit_id in rows
            ]
        )
    return len(rows)


def assignment_state_event(
    actor: Actor,
    assignment_id: int,
    before: AssignmentState,
    after: AssignmentState,
    reason: str,
    *,
    created_at: datetime | None = None,
) -> QueuedEvent:
    """The audit event of one assignment moved from ``before`` to ``after`` (``assignment.<after>``), to queue with
    the others a bulk change moved (``queue_audit_events``): the lease sweep, a cancel, a block."""
    return QueuedEvent(
        actor=actor,
        action=f"assignment.{after.value}",
        object_type="assignment",
        object_id=assignment_id,
        before={"state": before.value},
        after={"state": after.value},
        reason=reason,
        created_at=created_at,
    )
