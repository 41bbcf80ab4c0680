"""What the reviews a results file records mean beyond each assignment's state (``import_mturk_results`` calls
these in its transaction).

**A restatement without a review time.** A later download restates a review (``external_work``'s ``restate``)
when its review time is later than the one held, so an older download never undoes a newer review. A row whose
ApprovalTime/RejectionTime is empty, or whose file has no such column, cannot be ordered that way. It is treated
as a first import treats a reviewed row without a time: the file's status is taken, as of the import. The
restated review's time is the import time (``untimed_restatements``), its charge (if approved) is dated then,
and its entry in ``reviews_restated`` carries a ``note`` saying so. So a timeless file is taken as the newest
word on the assignments it restates; a later download with real review times restates them again only for
reviews after this import.

**Live work** (a HIT published from here: it has an ``MTurkHit`` row) is reviewed with the same budget and slot
consequences as a review made here or seen by collect (``settle_live_reviews``):

- approved (first seen, or a rejection restated as approved): the charge is booked by the live rule (the first
  one settles a committed slot; one booked again after a reversal settles none, see ``mturk_history_costs``);
- rejected, first seen: its slot's committed money is given back and its reservation released
  (``mturk_escrow.release_rejected_slot``, as collect and a local rejection do);
- an approval restated as rejected: its charge is reversed (``mturk_history_costs``). Its slot was settled by the
  approval, and MTurk does not offer a rejected assignment's slot again, so nothing is committed again: the
  reversed amount's reservation is released, as a local rejection releases its slot's, once per reversed charge
  (key ``assignment:<pk>:restated-release:<charge>``), never below what the ledger still holds;
- then ``budget.after_review`` runs once for the job, as after a local review or a collect (a rejection restated
  as approved is reserved again by its true-up, as a local override is). MTurk has taken or returned the money
  already, so a cap that refuses the true-up does not refuse the file: the refusal is reported and the alerts
  are still raised.

Imported history (no ``MTurkHit`` row) stays outside the budget, restated or not: its money was spent on MTurk
before the move (see ``mturk_history_costs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction

from tasks.models import Assignment, AssignmentState, BudgetReservation, CostEntry, CostKind, CostStatus, Job
from tasks.services.budget import (
    BudgetExceeded,
    after_review,
    check_budget_alerts,
    job_spent,
    release_budget,
)
from tasks.services.ledger import assignment_cost_key
from tasks.services.mturk_escrow import rejected_slot_key, release_rejected_slot
from tasks.services.mturk_results.items import MARKETPLACE
from tasks.services.mturk_results.reader import ResultRow
from workforce.audit import Actor

ZERO = Decimal("0")
_BATCH = 2000
_REVIEWED = (AssignmentState.APPROVED, AssignmentState.REJECTED)
_TIME_COLUMN: dict[str, str] = {AssignmentState.APPROVED: "ApprovalTime", AssignmentState.REJECTED: "RejectionTime"}


@dataclass(frozen=True)
class UntimedReview:
    """A row restating a review without a review time: the time it is restated at, and the report's note."""

    reviewed_at: datetime
    note: str


def untimed_restatements(*, job: Job, rows: Sequence[ResultRow], now: datetime) -> dict[int, UntimedReview]:
    """By line, the rows that restate a review held here (approved <-> rejected) but carry no review time; each is
    restated as of ``now`` (the import), or just after the time held should that be later."""
    wanted = {row.assignment_id: row for row in rows if row.status in _REVIEWED and row.reviewed_at is None}
    ids = list(wanted)
    found: dict[int, UntimedReview] = {}
    for start in range(0, len(ids), _BATCH):
        held = Assignment.objects.filter(
            job_id=job.pk, marketplace=MARKETPLACE, external_id__in=ids[start : start + _BATCH], state__in=_REVIEWED
        ).values_list("external_id", "state", "reviewed_at")
        for external_id, state, reviewed_at in held:
            row = wanted[str(external_id)]
            if state == row.status:
                continue
            at = now if reviewed_at is None or reviewed_at < now else reviewed_at + timedelta(microseconds=1)
            note = (
                f"the row has no {_TIME_COLUMN[row.status]}, so the review was restated as of this import "
                f"({at.isoformat()})"
            )
            found[row.line] = UntimedReview(at, note)
    return found


@dataclass
class LiveReviews:
    """The budget and slot side of the live work an import reviewed."""

    slots_released: int = 0  # first-seen rejections whose committed slot was given back
    released: Decimal = ZERO  # reservation given back (slots and reversed charges)
    reviewed: bool = False  # ``after_review`` ran for the job
    refused: str = ""  # the cap's refusal of the true-up, if any

    def as_dict(self) -> dict[str, Any]:
        return {
            "slots_released": self.slots_released,
            "released": str(self.released),
            "after_review": self.reviewed,
            "reservation_refused": self.refused,
        }


def _release(*, job: Job, amount: Decimal, key: str, actor: Actor) -> Decimal:
    """Give back ``amount`` of the reservation under ``key`` (once), never below what the ledger holds for the job
    (as ``mturk_escrow`` releases a rejected slot's). Locks the job row."""
    if BudgetReservation.objects.filter(key=key).exists():
        return ZERO
    reserved = Job.objects.select_for_update().values_list("budget_reserved", flat=True).get(pk=job.pk)
    amount = min(amount, reserved - job_spent(job))
    if amount <= 0:
        return ZERO
    return release_budget(job=job, amount=amount, key=key, actor=actor, reason="approval restated as rejected")


def _release_reversed_charges(*, job: Job, entries: Sequence[CostEntry], actor: Actor) -> Decimal:
    """Release the reservation of live charges reversed now, one release per assignment and charge generation."""
    by_assignment: dict[int, list[CostEntry]] = {}
    for entry in entries:
        if entry.assignment_id is not None:
            by_assignment.setdefault(entry.assignment_id, []).append(entry)
    released = ZERO
    for assignment_id, reversed_now in sorted(by_assignment.items()):
        named = next((e for e in reversed_now if e.kind == CostKind.REWARD), reversed_now[0])
        charge = named.idempotency_key.rsplit(":", 1)[-1]  # reward, reward-rebooked-1, ...
        key = assignment_cost_key(assignment_id, f"restated-release:{charge}")
        released += _release(job=job, amount=sum((e.amount for e in reversed_now), ZERO), key=key, actor=actor)
    return released


def _release_first_rejections(*, job: Job, live_hits: Sequence[int], external_ids: Sequence[str], actor: Actor) -> int:
    """Give back the committed slot of live work the file shows rejected that was never charged and whose slot
    was not given back before (as collect does for work MTurk reports rejected); returns the slots released."""
    rejected = list(
        Assignment.objects.filter(
            job_id=job.pk,
            hit_id__in=list(live_hits),
            marketplace=MARKETPLACE,
            external_id__in=list(external_ids),
            state=AssignmentState.REJECTED,
        )
        .select_related("hit", "job")
        .order_by("hit_id", "pk")
    )
    if not rejected:
        return 0
    pks = [a.pk for a in rejected]
    charged = set(
        CostEntry.objects.filter(
            assignment_id__in=pks, kind__in=[CostKind.REWARD, CostKind.MARKETPLACE_FEE], status=CostStatus.CHARGED
        ).values_list("assignment_id", flat=True)
    )
    done = set(
        CostEntry.objects.filter(idempotency_key__in=[rejected_slot_key(a) for a in rejected]).values_list(
            "assignment_id", flat=True
        )
    )
    released = set(
        BudgetReservation.objects.filter(key__in=[assignment_cost_key(pk, "release") for pk in pks]).values_list(
            "key", flat=True
        )
    )
    skip = charged | done
    count = 0
    for assignment in rejected:
        if assignment.pk in skip or assignment_cost_key(assignment.pk, "release") in released:
            continue
        count += bool(release_rejected_slot(assignment=assignment, actor=actor))
    return count


def settle_live_reviews(
    *,
    job: Job,
    live_hits: Sequence[int],
    rejected: Sequence[str],
    reversed_entries: Sequence[CostEntry],
    live_booked: int,
    actor: Actor,
    now: datetime,
) -> LiveReviews:
    """The budget and slot consequences of the live work the import reviewed (see the module docstring).
    ``live_hits``: the pks of the file's reviewed Hits published from here (locked, with the job row, before the
    import wrote any audit event); ``rejected``: the AssignmentIds of the file's Rejected rows;
    ``reversed_entries``: the charged rows reversed now; ``live_booked``: the live assignments charged now."""
    result = LiveReviews()
    if not live_hits:
        return result
    live = set(live_hits)
    with transaction.atomic():
        before = Job.objects.values_list("budget_reserved", flat=True).get(pk=job.pk)
        reversed_live = [e for e in reversed_entries if e.hit_id in live]
        _release_reversed_charges(job=job, entries=reversed_live, actor=actor)
        result.slots_released = _release_first_rejections(
            job=job, live_hits=live_hits, external_ids=rejected, actor=actor
        )
        result.released = before - Job.objects.values_list("budget_reserved", flat=True).get(pk=job.pk)
        if not (live_booked or reversed_live or result.slots_released):
            return result
        result.reviewed = True
        try:
            with transaction.atomic():
                after_review(job=job, actor=actor, now=now)
        except BudgetExceeded as exc:  # MTurk has moved the money already: report the refused true-up
            result.refused = str(exc)
            check_budget_alerts(job=job, actor=actor, now=now)
    return result
