"""What MTurk holds for a HIT's assignments, kept equal in the ledger and the budget.

MTurk takes reward and fee for every assignment of a HIT from the balance when the HIT (or an extra
assignment) is created; ``commit_hit_slots`` books that as one committed reward and fee row per slot. MTurk
gives the money back for the slots nobody filled once the HIT has expired, and for a rejected assignment;
it takes it again when an expired HIT is made live again (a new expiration in the future). Here:

- ``sync_hit_escrow`` compares what MTurk says of one HIT (GetHIT / ListHITs) with the ledger: an expired
  HIT's unfilled slots (``NumberOfAssignmentsAvailable``) get their committed rows reversed and their
  budget reservation released; a HIT live again gets those slots committed and reserved anew. The counts
  come from the ledger's own rows (keys ``mturk:hit:<uuid>:unfilled:<n>:<kind>`` for releases and
  ``mturk:hit:<uuid>:slot:r<n>:<kind>`` for slots committed again), under the Hit's row lock, so running
  it twice, or after a crash, never releases a slot twice.
- ``release_rejected_slot`` reverses one open slot of a rejected assignment (keys
  ``assignment:<pk>:release:reward`` / ``:fee``) and releases its reservation (key ``assignment:<pk>:release``,
  the one ``budget.release_rejected_work`` uses elsewhere); ``release_rejected_slots`` does it for many at once.
- ``settle_approved_slots`` reverses one open slot of each newly charged approval's HIT (keys
  ``assignment:<pk>:settle-reward`` / ``:settle-fee``): the charge replaces the slot's commitment.
- ``release_unfilled_mturk_slots`` is the periodic pass (run by collect): every HIT whose expiry has
  passed and that still has open committed slots is read with GetHIT and synced.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from tasks.models import Assignment, BudgetReservation, CostEntry, CostKind, CostStatus, Hit, Job, MTurkHit
from tasks.reports.estimate import unit_cost
from tasks.services.budget import exact, job_spent, release_budget, release_reservations, true_up_spent
from tasks.services.ledger import assignment_cost_key, reverse_cost, reverse_costs, reverse_costs_each
from tasks.services.mturk_common import MTURK, commit_hit_slots, ledger_key, mturk_connector
from workforce.audit import Actor, QueuedEvent, record_audit_event
from workforce.marketplaces.base import MarketplaceError
from workforce.marketplaces.mturk import MTurkMarketplace, RemoteHit
from workforce.marketplaces.mturk_fees import assignment_fee

ZERO = Decimal("0")
UNFILLED = "unfilled"
RECOMMITTED = "r"  # slot numbers of slots committed again after an expiry: ``slot:r1``, ``slot:r2``, ...
PASS_LIMIT = 500


@dataclass
class EscrowChange:
    released: int = 0
    recommitted: int = 0
    amount: Decimal = ZERO

    @property
    def changed(self) -> bool:
        return bool(self.released or self.recommitted)


@dataclass
class EscrowResult:
    hits_checked: int = 0
    slots_released: int = 0
    slots_recommitted: int = 0
    released: Decimal = ZERO
    failed: list[tuple[str, str]] = field(default_factory=list)

    def add(self, change: EscrowChange) -> None:
        self.hits_checked += 1
        self.slots_released += change.released
        self.slots_recommitted += change.recommitted
        self.released += change.amount if change.released else ZERO


def unfilled_slots(remote: RemoteHit, *, now: datetime) -> int:
    """The slots MTurk has given the money back for: none while the HIT is live; once it has expired, those
    no worker holds (never accepted, or returned and abandoned). ``NumberOfAssignmentsAvailable`` says it; it
    is never trusted beyond what the other two counts leave."""
    if remote.expires_at is None or remote.expires_at > now:
        return 0
    return max(0, min(remote.available, remote.max_assignments - remote.pending - remote.completed))


def _slot_prefix(hit: Hit) -> str:
    return ledger_key("hit", hit.uuid, "slot") + ":"


def _open_slots(hit: Hit) -> list[CostEntry]:
    """The HIT's committed reward rows not yet settled, released or reversed (newest first)."""
    return list(
        CostEntry.objects.filter(
            hit_id=hit.pk,
            kind=CostKind.REWARD,
            status=CostStatus.COMMITTED,
            idempotency_key__startswith=_slot_prefix(hit),
            reversed_by__isnull=True,
        ).order_by("-id")
    )


def _count(hit: Hit, prefix: str) -> int:
    """How many of the HIT's rows have a key starting with ``prefix`` (counting reward rows: one a slot)."""
    return CostEntry.objects.filter(
        hit_id=hit.pk, idempotency_key__startswith=prefix, idempotency_key__endswith=":reward"
    ).count()


def _reverse_slot(reward: CostEntry, *, key: str, memo: str) -> Decimal:
    """Reverse one slot (its reward row and its fee row) with keys ``<key>:reward`` and ``<key>:fee``;
    returns the amount taken off the ledger by this call."""
    amount = ZERO
    _, created = reverse_cost(entry=reward, idempotency_key=f"{key}:reward", memo=memo)
    amount += reward.amount if created else ZERO
    fee = CostEntry.objects.filter(idempotency_key=_fee_key(reward), reversed_by__isnull=True).first()
    if fee is not None:
        _, created = reverse_cost(entry=fee, idempotency_key=f"{key}:fee", memo=memo)
        amount += fee.amount if created else ZERO
    return amount


def _release_reservation(*, job: Job, amount: Decimal, key: str, actor: Actor, reason: str) -> None:
    """Give back ``amount`` of the job's reservation, never below what the ledger still holds for the job
    (a reservation the cap kept below the spend stays where it is). Locks the job row."""
    reserved = Job.objects.select_for_update().values_list("budget_reserved", flat=True).get(pk=job.pk)
    amount = min(amount, reserved - job_spent(job))
    if amount > 0:
        release_budget(job=job, amount=amount, key=key, actor=actor, reason=reason)


def unfilled_held_back(job: Job) -> Decimal:
    """What MTurk gave back for the job's unfilled slots (expired or paused HITs) and has not taken again:
    the most that opening its HITs again commits (one grouped query over the job's MTurk ledger rows)."""
    rows = CostEntry.objects.filter(job_id=job.pk, marketplace=MTURK)
    totals = rows.aggregate(
        released=Sum("amount", filter=Q(kind=CostKind.REVERSAL, idempotency_key__contains=f":{UNFILLED}:")),
        again=Sum(
            "amount",
            filter=Q(idempotency_key__contains=f":slot:{RECOMMITTED}") & ~Q(kind=CostKind.REVERSAL),
        ),
    )
    return max(-exact(totals["released"]) - exact(totals["again"]), ZERO)


def sync_hit_escrow(*, hit: Hit, remote: RemoteHit, actor: Actor, now: datetime | None = None) -> EscrowChange:
    """Bring the ledger and the budget in line with what MTurk holds for ``hit`` (see the module docstring).
    Idempotent: the second call with the same answer from MTurk changes nothing."""
    now = now or timezone.now()
    change = EscrowChange()
    target = unfilled_slots(remote, now=now)
    with transaction.atomic():
        # The Hit row first (as an approval settling a slot does), then the job row, then the audit head.
        hit = Hit.objects.select_for_update().select_related("job").get(pk=hit.pk)
        job = hit.job
        released_prefix = ledger_key("hit", hit.uuid, UNFILLED) + ":"
        recommit_prefix = _slot_prefix(hit) + RECOMMITTED
        released, recommitted = _count(hit, released_prefix), _count(hit, recommit_prefix)
        held_back = released - recommitted  # slots whose money MTurk has returned, as the ledger has it
        if target > held_back:
            slots = _open_slots(hit)[: target - held_back]
            memo = f"HIT {remote.hit_id} expired with this assignment unfilled; MTurk returned its money"
            for n, reward in enumerate(slots, start=released + 1):
                change.amount += _reverse_slot(reward, key=f"{released_prefix}{n}", memo=memo)
            change.released = len(slots)
            if not slots:
                return change
            first, last = released + 1, released + len(slots)
            _release_reservation(
                job=job,
                amount=change.amount,
                key=f"{released_prefix}{first}-{last}:release",
                actor=actor,
                reason="MTurk HIT expired with unfilled assignments",
            )
            action, after = "mturk.unfilled_released", {"slots": len(slots), "amount": str(change.amount)}
        elif target < held_back:
            info = MTurkHit.objects.get(hit_id=hit.pk)
            count = held_back - target
            fee = assignment_fee(info.reward, assignments_per_hit=info.max_assignments, masters=info.masters)
            commit_hit_slots(
                hit=hit,
                reward=info.reward,
                fee=fee,
                slots=range(recommitted + 1, recommitted + count + 1),
                reference=remote.hit_id,
                prefix=RECOMMITTED,
            )
            change.recommitted = count
            change.amount = (info.reward + fee) * count
            action, after = "mturk.unfilled_recommitted", {"slots": count, "amount": str(change.amount)}
            # MTurk holds the money already: the ledger books that fact whatever the caps say; a refused
            # top-up leaves the reservation short, and the event says why (the budget alerts see the spend).
            if refused := true_up_spent(job=job, actor=actor):
                after["reservation_refused"] = refused
        else:
            return change
        record_audit_event(
            actor=actor,
            action=action,
            object_type="hit",
            object_id=hit.pk,
            after={**after, "hit_id": remote.hit_id, "expires_at": _iso(remote.expires_at)},
        )
    return change


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def release_rejected_slot(*, assignment: Assignment, actor: Actor, now: datetime | None = None) -> Decimal:
    """MTurk returns a rejected assignment's reward and fee (its slot is not offered again): reverse one open
    slot of its HIT and release that much of the reservation, once per assignment. Work on a HIT this ledger
    never committed (imported from results files) has only its unit cost released, as elsewhere. Returns
    the amount released."""
    with transaction.atomic():
        hit = Hit.objects.select_for_update().select_related("job").get(pk=assignment.hit_id)
        key = assignment_cost_key(assignment.pk, "release")
        if CostEntry.objects.filter(idempotency_key=rejected_slot_key(assignment)).exists():
            return ZERO
        slots = _open_slots(hit)
        if not slots:
            return release_budget(
                job=hit.job, amount=unit_cost(hit.job), key=key, actor=actor, reason="assignment rejected", now=now
            )
        memo = f"assignment {assignment.external_id} rejected; MTurk returned its reward and fee"
        amount = _reverse_slot(slots[0], key=key, memo=memo)
        _release_reservation(job=hit.job, amount=amount, key=key, actor=actor, reason="assignment rejected")
        record_audit_event(
            actor=actor,
            action="mturk.rejected_slot_released",
            object_type="assignment",
            object_id=assignment.pk,
            after={"hit": hit.pk, "amount": str(amount), "assignment_id": str(assignment.external_id)},
        )
    return amount


def release_rejected_slots(*, job: Job, assignments: Sequence[Assignment], actor: Actor) -> int:
    """``release_rejected_slot`` for many rejected assignments of ``job``, in the order given (collect gives them
    by HIT, then by id), leaving the same rows and audit events, set-based: one lock of the HIT rows (id order),
    one read each of the keys used before, of the open slots and of their fee rows, one insert of the reversals,
    then the job's releases and the audit events in one go (``budget.release_reservations``), in the budget's
    lock order. An assignment whose slot (or, elsewhere, its reservation: ``budget.release_rejected_work``) was
    given back before is skipped. Returns how many gave money back now."""
    assignments = list({a.pk: a for a in assignments}.values())
    if not assignments:
        return 0
    with transaction.atomic():
        prefixes = _lock_slot_prefixes(Hit.objects.filter(pk__in={a.hit_id for a in assignments}, job_id=job.pk))
        keys = {a.pk: assignment_cost_key(a.pk, "release") for a in assignments}
        done = set(
            CostEntry.objects.filter(idempotency_key__in=[rejected_slot_key(a) for a in assignments]).values_list(
                "idempotency_key", flat=True
            )
        )
        done |= set(BudgetReservation.objects.filter(key__in=keys.values()).values_list("key", flat=True))
        todo = [a for a in assignments if a.hit_id in prefixes and not {rejected_slot_key(a), keys[a.pk]} & done]
        open_slots = _open_slots_by_hit(
            {pk: prefixes[pk] for pk in {a.hit_id for a in todo}}, newest_first=True
        )  # newest first, as ``_open_slots``
        slots = {a.pk: open_slots[a.hit_id].popleft() for a in todo if open_slots[a.hit_id]}
        fees = _fee_rows(slots.values())
        reversals: list[tuple[CostEntry, str, str]] = []
        owners: list[int] = []
        for a in todo:
            if (slot := slots.get(a.pk)) is None:
                continue
            memo = f"assignment {a.external_id} rejected; MTurk returned its reward and fee"
            for entry, part in ((slot, "reward"), (fees.get(_fee_key(slot)), "fee")):
                if entry is not None:
                    reversals.append((entry, f"{keys[a.pk]}:{part}", memo))
                    owners.append(a.pk)
        amounts: dict[int, Decimal] = {a.pk: ZERO for a in todo}
        for (entry, _, _), pk, created in zip(reversals, owners, reverse_costs_each(reversals), strict=True):
            amounts[pk] += entry.amount if created else ZERO
        return _release_rejected_reservations(job=job, todo=todo, slots=slots, amounts=amounts, actor=actor)


def _release_rejected_reservations(
    *, job: Job, todo: list[Assignment], slots: dict[int, CostEntry], amounts: dict[int, Decimal], actor: Actor
) -> int:
    """The budget side of ``release_rejected_slots``, decided in memory as the one-by-one releases would be
    (each capped at what is reserved beyond the spend after its own reversal) and written at once."""
    reserved = Job.objects.select_for_update().values_list("budget_reserved", flat=True).get(pk=job.pk)
    spent = job_spent(job) + sum(amounts.values(), ZERO)  # as before this run's reversals
    unit = unit_cost(job)
    wanted: list[tuple[str, Decimal]] = []
    events: dict[str, list[QueuedEvent]] = {}
    released = 0
    for a in todo:
        key = assignment_cost_key(a.pk, "release")
        if a.pk in slots:
            spent -= amounts[a.pk]
            want = min(amounts[a.pk], reserved - spent)
            released += amounts[a.pk] != 0
            events[key] = [_rejected_slot_event(a, amounts[a.pk], actor)]
        else:
            want = unit
        given = min(want, reserved)
        if given > 0:
            reserved -= given
            released += a.pk not in slots
        wanted.append((key, want))
    release_reservations(
        job=job, wanted=wanted, actor=actor, reason="assignment rejected", now=timezone.now(), followed_by=events
    )
    return released


def _rejected_slot_event(assignment: Assignment, amount: Decimal, actor: Actor) -> QueuedEvent:
    return QueuedEvent(
        actor=actor,
        action="mturk.rejected_slot_released",
        object_type="assignment",
        object_id=assignment.pk,
        after={"hit": assignment.hit_id, "amount": str(amount), "assignment_id": str(assignment.external_id)},
    )


def rejected_slot_key(assignment: Assignment) -> str:
    """The ledger key of the reversal that gave back a rejected assignment's slot (its reward row)."""
    return assignment_cost_key(assignment.pk, "release") + ":reward"


def slot_released_at_rejection(assignment: Assignment) -> bool:
    """True when the assignment's slot was given back at its rejection (an override must not settle another)."""
    return CostEntry.objects.filter(idempotency_key=rejected_slot_key(assignment)).exists()


def settle_approved_slots(assignments: Sequence[Assignment]) -> int:
    """Reverse one still-open committed slot (its reward and fee rows) of each assignment's HIT, lowest slot
    first, in the order given: the charge now on the assignment replaces that slot's commitment, so the ledger
    counts the money once. An assignment whose slot was given back at its rejection (an overridden rejection)
    settles none; one whose HIT has no open slot left settles none. Set-based: one lock of the HIT rows, one read
    of the rejections' keys, one of the open slots, one of their fee rows, one insert. Returns the slots settled."""
    assignments = list({a.pk: a for a in assignments}.values())  # each settles one slot, however often given
    if not assignments:
        return 0
    # the Hit rows locked in id order (the lock order), so no two approvals take the same slot
    prefixes = _lock_slot_prefixes(Hit.objects.filter(pk__in={a.hit_id for a in assignments}))
    given_back = set(
        CostEntry.objects.filter(idempotency_key__in=[rejected_slot_key(a) for a in assignments]).values_list(
            "idempotency_key", flat=True
        )
    )
    open_slots = _open_slots_by_hit(prefixes, newest_first=False)
    settling = [
        (a, open_slots[a.hit_id].popleft())
        for a in assignments
        if rejected_slot_key(a) not in given_back and open_slots[a.hit_id]
    ]
    fees = _fee_rows(reward for _, reward in settling)
    reversals: list[tuple[CostEntry, str, str]] = []
    for assignment, reward in settling:
        memo = f"settled by the approval of assignment {assignment.external_id}"
        reversals.append((reward, assignment_cost_key(assignment.pk, "settle-reward"), memo))
        if (fee := fees.get(_fee_key(reward))) is not None:
            reversals.append((fee, assignment_cost_key(assignment.pk, "settle-fee"), memo))
    reverse_costs(reversals)
    return len(settling)


def _lock_slot_prefixes(hits: QuerySet[Hit]) -> dict[int, str]:
    """Lock ``hits`` in id order (the lock order) and return each one's slot key prefix."""
    locked = hits.select_for_update().order_by("pk").values_list("pk", "uuid")
    return {pk: ledger_key("hit", uuid, "slot") + ":" for pk, uuid in locked}


def _open_slots_by_hit(prefixes: dict[int, str], *, newest_first: bool) -> defaultdict[int, deque[CostEntry]]:
    """The open committed slots (reward rows) of the Hits in ``prefixes`` (Hit id -> slot key prefix), per Hit,
    in one read: ``_open_slots`` for many Hits."""
    open_slots: defaultdict[int, deque[CostEntry]] = defaultdict(deque)
    rewards = CostEntry.objects.filter(
        hit_id__in=prefixes, kind=CostKind.REWARD, status=CostStatus.COMMITTED, reversed_by__isnull=True
    ).order_by("-id" if newest_first else "id")
    for reward in rewards:
        if reward.hit_id is not None and reward.idempotency_key.startswith(prefixes[reward.hit_id]):
            open_slots[reward.hit_id].append(reward)
    return open_slots


def _fee_rows(rewards: Iterable[CostEntry]) -> dict[str, CostEntry]:
    """The unreversed fee rows committed with the given slots' reward rows, by key (one read)."""
    keys = [_fee_key(reward) for reward in rewards]
    return {
        fee.idempotency_key: fee for fee in CostEntry.objects.filter(idempotency_key__in=keys, reversed_by__isnull=True)
    }


def _fee_key(reward: CostEntry) -> str:
    """The key of the fee row committed with a slot's reward row."""
    return reward.idempotency_key.rsplit(":", 1)[0] + f":{CostKind.MARKETPLACE_FEE}"


def release_unfilled_mturk_slots(
    *, actor: Actor, connector: MTurkMarketplace | None = None, now: datetime | None = None, limit: int = PASS_LIMIT
) -> EscrowResult:
    """The expiry pass: every HIT of ours whose expiry (as we last set or saw it) has passed and that still
    has open committed slots is read (GetHIT) and synced; the least recently polled first."""
    connector = mturk_connector(connector)
    now = now or timezone.now()
    open_slot = CostEntry.objects.filter(
        hit_id=OuterRef("hit_id"),
        marketplace=MTURK,
        kind=CostKind.REWARD,
        status=CostStatus.COMMITTED,
        idempotency_key__contains=":slot:",
        reversed_by__isnull=True,
    )
    due = (
        MTurkHit.objects.filter(
            published_at__isnull=False, deleted_at__isnull=True, expires_at__lte=now, hit__external_id__isnull=False
        )
        .filter(Exists(open_slot))
        .select_related("hit")
        .order_by(F("polled_at").asc(nulls_first=True), "hit_id")[:limit]
    )
    result = EscrowResult()
    for info in due:
        external_id = str(info.hit.external_id)
        try:
            remote = connector.get_hit(external_id)
        except MarketplaceError as error:
            if not error.permanent:
                raise
            result.failed.append((external_id, str(error)))
            continue
        result.add(sync_hit_escrow(hit=info.hit, remote=remote, actor=actor, now=now))
    return result
