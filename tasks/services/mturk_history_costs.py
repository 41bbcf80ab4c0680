"""What MTurk work imported from a results file cost: each approved assignment's reward and MTurk's fee.

``import_mturk_results`` calls ``book_imported_assignment_costs`` in its transaction, after the file's work
is recorded. Only rows the file reports as ``Approved`` whose assignment is approved here are booked;
``Submitted`` and ``Rejected`` rows book nothing. Two cases:

- **History** (the HIT was not published from here: no ``MTurkHit`` row): the money was spent on MTurk
  before the move, so it is booked as ``charged`` rows, in USD, straight into the ledger, with no budget
  reservation read, made or released. The reward is the row's ``Reward`` cell; MTurk's fee follows its
  schedule (``workforce.marketplaces.mturk_fees.assignment_fee``) for the row's ``MaxAssignments`` (40% from
  10 assignments up), or the 20% base rate when the file has no ``MaxAssignments``. The Masters surcharge is
  not in results files and is not added. A row without a ``Reward`` books nothing and is reported. The rows'
  ``memo`` starts with ``IMPORTED_MEMO`` so reports can tell imported history from work paid here.
- **Live** (a HIT published from here, approved on MTurk and seen first in a results file rather than by
  collect): booked by the live rule, ``mturk_review.book_approval_charges``, which also settles the HIT's
  committed slot, exactly as collect does.

Both use the ledger's one key scheme for assignments (``assignment:<pk>:reward`` / ``assignment:<pk>:fee``),
so an assignment collected (or approved) here and later imported, or imported twice, is booked once: the
first booking wins, later ones find the keys taken and book nothing.

A later download may restate a review (``external_work``'s ``restate``). An approval restated as a rejection
has its charged reward and fee cancelled by ``reverse_rejected_assignment_costs`` with reversal rows (the ledger
is append-only; nothing is deleted; a reversal's key is its row's key plus ``:reversed``). Approved once more, an
assignment whose every charge was reversed is booked again, history or live alike, under keys that carry the
generation: ``assignment:<pk>:reward-rebooked-<n>`` / ``fee-rebooked-<n>``, ``n`` the charges it has had. A retry
or an identical download finds that key taken (or the charge open) and books nothing; the next
rejection-and-approval is generation ``n + 1``. A live charge booked again settles no slot: the assignment gave
its slot up at its first approval (or at its rejection), so the ledger keeps counting the money once. What a
restated review of live work does to the budget is ``mturk_results.reviews``'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q

from tasks.models import Assignment, AssignmentState, CostEntry, CostKind, CostStatus, Hit, Job, MTurkHit
from tasks.services.errors import ServiceError
from tasks.services.ledger import CostLine, assignment_cost_key, record_costs, record_costs_once, reverse_costs_each
from workforce.audit import Actor, record_audit_event
from workforce.marketplaces.mturk_fees import assignment_fee
from workforce.models import Marketplace

MTURK = Marketplace.MTURK
CURRENCY = "USD"  # MTurk charges in US dollars only
IMPORTED_MEMO = "imported MTurk history"
ZERO = Decimal("0")
_BATCH = 2000
_CHARGE_PARTS = {CostKind.REWARD: "reward", CostKind.MARKETPLACE_FEE: "fee"}  # kind -> its key's part


def check_usd_job(job: Job) -> None:
    """MTurk charged in US dollars; its work and bonuses are booked in USD, so only into a USD job (a job's
    ledger, budget and reports hold one currency)."""
    if job.currency != CURRENCY:
        raise ServiceError(
            f"MTurk paid in US dollars, but job {job.pk} keeps its costs in {job.currency}; import MTurk work "
            "and bonuses into a USD job (or a new one)."
        )


def imported_memo(source: str, note: str = "") -> str:
    """The memo of an imported history row: the marker, the file it came from and an optional note."""
    memo = f"{IMPORTED_MEMO} ({source})" if source else IMPORTED_MEMO
    return (f"{memo}: {note}" if note else memo)[:255]


def imported_history() -> Q:
    """The filter that picks imported MTurk history out of ``CostEntry`` rows (for reports)."""
    return Q(memo__startswith=IMPORTED_MEMO)


@dataclass(frozen=True)
class ImportedApproval:
    """One ``Approved`` row of a results file: its line, MTurk's AssignmentId and the HIT's price."""

    line: int
    assignment_id: str
    reward: Decimal | None
    max_assignments: int | None
    approved_at: datetime | None = None  # the file's ApprovalTime: the rows are dated when MTurk charged


@dataclass
class HistoryCosts:
    """What one import booked. Amounts are this run's new rows only (a re-import books 0)."""

    assignments_booked: int = 0
    rewards: Decimal = ZERO
    fees: Decimal = ZERO
    live_assignments_booked: int = 0
    ledger_rows_booked: int = 0
    already_booked: int = 0
    not_booked: list[dict[str, Any]] = field(default_factory=list)  # line, assignment, reason

    def as_dict(self) -> dict[str, Any]:
        return {
            "assignments_booked": self.assignments_booked,
            "rewards": str(self.rewards),
            "fees": str(self.fees),
            "currency": CURRENCY,
            "live_assignments_booked": self.live_assignments_booked,
            "ledger_rows_booked": self.ledger_rows_booked,
            "already_booked": self.already_booked,
            "not_booked": self.not_booked,
        }


def lock_live_hits(*, external_hit_ids: Iterable[str]) -> list[int]:
    """Lock the HITs published from here among ``external_hit_ids`` (in id order), as collect does before
    it writes its audit events: an approval booked by the live rule settles a slot under the HIT's lock, and
    the lock order is HIT rows, then the audit head. Returns the locked Hits' pks."""
    ids = sorted(set(external_hit_ids))
    locked: list[int] = []
    for start in range(0, len(ids), _BATCH):
        locked += list(
            Hit.objects.select_for_update()
            .filter(marketplace=MTURK, external_id__in=ids[start : start + _BATCH], mturk__isnull=False)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    return locked


def _assignments(job: Job, external_ids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(external_ids), _BATCH):
        for row in Assignment.objects.filter(
            job_id=job.pk, marketplace=MTURK, external_id__in=external_ids[start : start + _BATCH]
        ).values("id", "external_id", "state", "hit_id", "worker_id"):
            found[str(row["external_id"])] = dict(row)
    return found


def _taken_keys(keys: list[str]) -> set[str]:
    taken: set[str] = set()
    for start in range(0, len(keys), _BATCH):
        taken.update(
            CostEntry.objects.filter(idempotency_key__in=keys[start : start + _BATCH]).values_list(
                "idempotency_key", flat=True
            )
        )
    return taken


def _charges(assignment_ids: list[int]) -> dict[tuple[int, str], tuple[int, int]]:
    """(rows, rows not reversed) of each assignment's charged reward and fee, by (assignment pk, kind)."""
    found: dict[tuple[int, str], tuple[int, int]] = {}
    for start in range(0, len(assignment_ids), _BATCH):
        for assignment_id, kind, reversed_by in CostEntry.objects.filter(
            assignment_id__in=assignment_ids[start : start + _BATCH],
            kind__in=list(_CHARGE_PARTS),
            status=CostStatus.CHARGED,
        ).values_list("assignment_id", "kind", "reversed_by"):
            rows, open_rows = found.get((assignment_id, kind), (0, 0))
            found[(assignment_id, kind)] = (rows + 1, open_rows + (reversed_by is None))
    return found


def _charge_lines(
    assignment: dict[str, Any],
    amounts: tuple[Decimal, Decimal],
    charges: dict[tuple[int, str], tuple[int, int]],
    **fields: Any,
) -> list[CostLine]:
    """The reward and fee rows still to book for ``assignment`` (``amounts``: reward, fee): none for a part booked
    and not reversed; a part whose rows were all reversed (an approval restated as a rejection, then approved
    again) is booked under the key of its next generation. ``fields``: the rows' other ``CostLine`` fields."""
    lines = []
    for kind, amount in zip(_CHARGE_PARTS, amounts, strict=True):
        rows, open_rows = charges.get((assignment["id"], kind), (0, 0))
        if open_rows:
            continue
        part = _CHARGE_PARTS[kind] + (f"-rebooked-{rows}" if rows else "")
        lines.append(
            CostLine(
                kind=kind,
                amount=amount,
                idempotency_key=assignment_cost_key(assignment["id"], part),
                hit_id=assignment["hit_id"],
                assignment_id=assignment["id"],
                worker_id=assignment["worker_id"],
                marketplace=MTURK,
                status=CostStatus.CHARGED,
                currency=CURRENCY,
                **fields,
            )
        )
    return lines


def _history_lines(
    job: Job,
    row: ImportedApproval,
    reward: Decimal,
    assignment: dict[str, Any],
    source: str,
    charges: dict[tuple[int, str], tuple[int, int]],
) -> list[CostLine]:
    """A history row's reward and fee still to book (see ``_charge_lines``), dated when MTurk charged them."""
    fee = assignment_fee(reward, assignments_per_hit=row.max_assignments or 1)
    return _charge_lines(
        assignment,
        (reward, fee),
        charges,
        job_id=job.pk,
        reference=row.assignment_id,
        memo=imported_memo(source),
        created_at=row.approved_at,
    )


def _live_again_lines(
    job: Job, assignment: dict[str, Any], info: MTurkHit, source: str, charges: dict[tuple[int, str], tuple[int, int]]
) -> list[CostLine]:
    """A live assignment's charge booked again (every earlier one reversed): what MTurk charges for its HIT, as
    ``mturk_review.book_approval_charges`` books it, under the next generation's keys."""
    fee = assignment_fee(info.reward, assignments_per_hit=info.max_assignments, masters=info.masters)
    return _charge_lines(
        assignment,
        (info.reward, fee),
        charges,
        job_id=job.pk,
        reference=str(assignment["external_id"]),
        memo=f"approved again in {source}"[:255] if source else "approved again",
    )


def book_imported_assignment_costs(
    *, job: Job, rows: Sequence[ImportedApproval], source: str, actor: Actor
) -> HistoryCosts:
    """Book the reward and MTurk fee of every approved row once; see the module docstring."""
    from tasks.services.mturk_review import book_approval_charges  # review imports budget; keep the import lazy

    result = HistoryCosts()
    if not rows:
        return result
    with transaction.atomic():
        assignments = _assignments(job, [row.assignment_id for row in rows])
        live_hits = {
            info.hit_id: info
            for info in MTurkHit.objects.filter(hit_id__in={a["hit_id"] for a in assignments.values()})
        }
        history: list[tuple[ImportedApproval, Decimal, dict[str, Any]]] = []
        live: list[dict[str, Any]] = []
        for row in rows:
            assignment = assignments.get(row.assignment_id)
            reason = ""
            if assignment is None:
                reason = "the assignment is not recorded in this job"
            elif assignment["state"] != AssignmentState.APPROVED:
                reason = f"the assignment is {assignment['state']} here, so its cost was not booked"
            elif assignment["hit_id"] in live_hits:
                live.append(assignment)
            elif not row.reward:
                reason = "the row has no Reward (or $0.00), so its cost was not booked"
            else:
                history.append((row, row.reward, assignment))
            if reason:
                result.not_booked.append({"line": row.line, "assignment": row.assignment_id, "reason": reason})
        charges = _charges([a["id"] for _, _, a in history] + [a["id"] for a in live])
        lines = [line for row, reward, a in history for line in _history_lines(job, row, reward, a, source, charges)]
        taken = _taken_keys([line.idempotency_key for line in lines])
        new = [line for line in lines if line.idempotency_key not in taken]
        result.ledger_rows_booked = record_costs(new)
        result.rewards = sum((line.amount for line in new if line.kind == CostKind.REWARD), ZERO)
        result.fees = sum((line.amount for line in new if line.kind == CostKind.MARKETPLACE_FEE), ZERO)
        result.assignments_booked = len({line.assignment_id for line in new})
        result.already_booked = len(history) - result.assignments_booked
        # Live work never charged here is booked by the live rule (which settles its slot); live work whose every
        # charge was reversed is charged again under the next generation's keys, settling no slot.
        first = {a["id"] for a in live if not any((a["id"], kind) in charges for kind in _CHARGE_PARTS)}
        again = record_costs_once(
            [
                line
                for a in live
                if a["id"] not in first
                for line in _live_again_lines(job, a, live_hits[a["hit_id"]], source, charges)
            ]
        )
        result.ledger_rows_booked += len(again)
        result.live_assignments_booked += len({line.assignment_id for line in again})
        result.already_booked += len(live) - len(first) - result.live_assignments_booked
        for assignment_row in Assignment.objects.filter(pk__in=first).select_related("hit", "job", "worker"):
            booked = book_approval_charges(assignment=assignment_row)
            result.ledger_rows_booked += booked
            result.live_assignments_booked += bool(booked)
            result.already_booked += not booked
        if result.ledger_rows_booked:
            record_audit_event(
                actor=actor,
                action="costs.history_imported",
                object_type="job",
                object_id=job.pk,
                after={
                    "source": source,
                    "assignments": result.assignments_booked,
                    "rewards": str(result.rewards),
                    "fees": str(result.fees),
                    "currency": CURRENCY,
                    "live_assignments": result.live_assignments_booked,
                },
            )
    return result


@dataclass
class ReversedCosts:
    """What one import reversed: the charges of assignments booked as approved that the file says are rejected."""

    assignments_reversed: int = 0
    ledger_rows_reversed: int = 0
    amount: Decimal = ZERO  # the reversal rows' sum (negative)
    entries: list[CostEntry] = field(default_factory=list)  # the charged rows reversed now (not in ``as_dict``)

    def as_dict(self) -> dict[str, Any]:
        return {
            "assignments_reversed": self.assignments_reversed,
            "ledger_rows_reversed": self.ledger_rows_reversed,
            "amount": str(self.amount),
            "currency": CURRENCY,
        }


def reverse_rejected_assignment_costs(
    *, job: Job, assignment_ids: Sequence[str], source: str, actor: Actor
) -> ReversedCosts:
    """Cancel, by reversal rows, the charged reward and fee of every assignment among ``assignment_ids`` (MTurk
    AssignmentIds of rows the file reports as ``Rejected``) that is rejected here and still carries them (it was
    booked as approved before). Once: a reversed row is not reversed again. Set-based: the rows to reverse are
    read in one query (per batch of ids) and reversed in one insert (``ledger.reverse_costs_each``)."""
    result = ReversedCosts()
    if not assignment_ids:
        return result
    ids = list(dict.fromkeys(assignment_ids))
    with transaction.atomic():
        entries: list[CostEntry] = []
        for start in range(0, len(ids), _BATCH):
            entries += CostEntry.objects.filter(
                assignment__job_id=job.pk,
                assignment__marketplace=MTURK,
                assignment__external_id__in=ids[start : start + _BATCH],
                assignment__state=AssignmentState.REJECTED,
                kind__in=list(_CHARGE_PARTS),
                status=CostStatus.CHARGED,
                reversed_by__isnull=True,
            )
        entries.sort(key=lambda entry: entry.pk)
        reversals = []
        for entry in entries:
            note = f"assignment {entry.reference} is rejected in the file"
            memo = imported_memo(source, note) if entry.memo.startswith(IMPORTED_MEMO) else note
            reversals.append((entry, f"{entry.idempotency_key}:reversed", memo))
        for entry, created in zip(entries, reverse_costs_each(reversals), strict=True):
            if created:
                result.ledger_rows_reversed += 1
                result.amount += -entry.amount
                result.entries.append(entry)
        result.assignments_reversed = len({entry.assignment_id for entry in entries})
        if result.ledger_rows_reversed:
            record_audit_event(
                actor=actor,
                action="costs.history_reversed",
                object_type="job",
                object_id=job.pk,
                after={"source": source, **result.as_dict()},
            )
    return result
