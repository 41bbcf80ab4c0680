"""Which bonuses of an MTurk bonus file the ledger holds already, whichever kind of file booked them.

A team moving off MTurk may hold the same bonus twice: in the bulk-bonus file it paid from (no grant time)
and in ListBonusPayments flattened to CSV (with ``GrantTime``). The ledger keys say what a booking was:
``bonus:mturk:<AssignmentId>:<content>:<grant>``, ``content`` a digest of the assignment, worker, amount and
reason, ``grant`` the grant time (ISO 8601) or ``-`` when the file had none. So, per assignment and content:

- a row without a grant time is booked already when any bonus of that content is (the bulk file's bonus is
  one of those MTurk lists; several identical bonuses on one assignment cannot be told apart without a time);
- a row with a grant time is booked already when that time is. Otherwise, when an undated booking of the
  content stands (not reversed), that booking is this bonus: the row is booked dated at its grant time and
  the undated booking (bonus and fee) is cancelled by reversal rows (``Claim``), so the money is counted
  once, the ledger stays append-only, and a later file with another grant time of the same content books
  that one. The earliest grant time claims first.

Bookings made before this scheme (``bonus:mturk:<AssignmentId>:<digest>``, the digest over the content and
the grant time, or an empty one) take part too: their content is read back from the row (worker, amount,
and the reason at the end of the memo ``imported_memo`` wrote), and whether they were dated from whether
their key is the undated one.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from tasks.models import CostEntry, CostKind
from tasks.services.ledger import bonus_cost_key, reverse_cost

UNDATED = "-"
_CHUNK = 200  # assignments per prefix query


def content_digest(assignment_id: str, worker_id: str, amount: Decimal, reason: str) -> str:
    identity = "\x1f".join((assignment_id, worker_id, str(amount), reason))
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def bonus_key(assignment_id: str, content: str, grant_time: datetime | None) -> str:
    """The caller's bonus key (the ledger adds ``bonus:``)."""
    return f"mturk:{assignment_id}:{content}:{grant_time.isoformat() if grant_time else UNDATED}"


def legacy_bonus_key(assignment_id: str, worker_id: str, amount: Decimal, reason: str, grant: datetime | None) -> str:
    """The key an earlier version booked the same row under."""
    identity = "\x1f".join((assignment_id, worker_id, str(amount), reason, grant.isoformat() if grant else ""))
    return f"mturk:{assignment_id}:{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


@dataclass
class _Booked:
    """One (assignment, content): the dated bookings standing, and the undated one a dated row may claim."""

    grants: set[str] = field(default_factory=set)
    undated: str | None = None  # the standing undated booking's ledger key


@dataclass(frozen=True)
class Claim:
    """An undated booking found to be the bonus a dated row books: reversed (bonus and fee) once that row is
    booked."""

    undated_key: str  # the ledger key of the undated bonus row
    key: str  # the caller's key of the dated row that replaces it


def _reason_of(memo: str) -> str:
    """The reason ``imported_memo`` put after the file's name (``imported MTurk history (f.csv): reason``)."""
    _, found, reason = memo.partition("): ")
    return reason if found else ""


def _standing_bonuses() -> QuerySet[CostEntry]:
    """Bonus rows no reversal cancels."""
    return CostEntry.objects.filter(kind=CostKind.BONUS).exclude(
        Exists(CostEntry.objects.filter(reverses=OuterRef("pk")))
    )


MEMO_LENGTH = 255  # ``CostEntry.memo``'s length: a longer memo was stored cut


@dataclass(frozen=True)
class _CutMemo:
    """An earlier-scheme booking whose memo was cut, so only the start of its reason is known."""

    key: str
    reason_start: str
    grant: str  # UNDATED or ``legacy:<key>``


def _booked(
    assignment_ids: Iterable[str],
) -> tuple[dict[tuple[str, str], _Booked], dict[tuple[str, str, Decimal], list[_CutMemo]]]:
    """Per (assignment, content): what the ledger holds, reversed bookings left out; and per (assignment, worker,
    amount) the earlier-scheme bookings whose memo was cut (their content cannot be read back whole)."""
    found: dict[tuple[str, str], _Booked] = defaultdict(_Booked)
    cut: dict[tuple[str, str, Decimal], list[_CutMemo]] = defaultdict(list)
    ids = sorted(set(assignment_ids))
    for start in range(0, len(ids), _CHUNK):
        prefixes = Q()
        for assignment_id in ids[start : start + _CHUNK]:
            prefixes |= Q(idempotency_key__startswith=bonus_cost_key(f"mturk:{assignment_id}:"))
        rows = (
            _standing_bonuses().filter(prefixes).values_list("idempotency_key", "amount", "memo", "worker__external_id")
        )
        for key, amount, memo, worker in rows:
            parts = key.split(":", 4)  # bonus, mturk, assignment, content, grant (the grant holds colons)
            if len(parts) == 5:
                assignment, content, grant = parts[2], parts[3], parts[4]
            else:  # the earlier scheme: the content read back from the row
                assignment, reason, cents = parts[2], _reason_of(memo), Decimal(amount).quantize(Decimal("0.01"))
                content = content_digest(assignment, worker or "", cents, reason)
                undated = bonus_cost_key(legacy_bonus_key(assignment, worker or "", cents, reason, None))
                grant = UNDATED if key == undated else f"legacy:{key}"
                if len(memo) >= MEMO_LENGTH:
                    cut[(assignment, worker or "", cents)].append(_CutMemo(key, reason, grant))
                    continue
            booked = found[(assignment, content)]
            if grant == UNDATED:
                booked.undated = key
            else:
                booked.grants.add(grant)
    return found, cut


def _match_cut_memos(
    rows: Sequence[tuple[Any, Any]],
    booked: dict[tuple[str, str], _Booked],
    cut: dict[tuple[str, str, Decimal], list[_CutMemo]],
) -> None:
    """Credit an earlier-scheme booking with a cut memo to the file's row whose reason it starts (same assignment,
    worker and amount): read back whole it would have named that row's content."""
    for row, _ in rows:
        for memo in cut.get((row.assignment_id, row.worker_id, Decimal(row.amount).quantize(Decimal("0.01"))), []):
            if not row.reason.startswith(memo.reason_start):
                continue
            held = booked[(row.assignment_id, row.content)]
            if memo.grant == UNDATED:
                held.undated = held.undated or memo.key
            else:
                held.grants.add(memo.grant)


def unbooked(rows: Sequence[tuple[Any, Any]]) -> tuple[list[tuple[Any, Any]], list[Claim]]:
    """The ``(row, assignment)`` pairs to book, and the undated bookings that some of them replace. A row has
    ``line``, ``assignment_id``, ``content``, ``key``, ``legacy_key`` and ``grant_time`` (``bonuses.BonusRow``)."""
    legacy = set(
        CostEntry.objects.filter(idempotency_key__in=[bonus_cost_key(row.legacy_key) for row, _ in rows]).values_list(
            "idempotency_key", flat=True
        )
    )
    booked, cut = _booked(row.assignment_id for row, _ in rows)
    _match_cut_memos(rows, booked, cut)
    _find_legacy_undated(rows, booked)
    new: list[tuple[Any, Any]] = []
    claims: list[Claim] = []
    # dated rows first, earliest first, so the earliest grant time claims an undated booking
    order = sorted(rows, key=lambda pair: (pair[0].grant_time is None, pair[0].grant_time or datetime.min))
    for row, assignment in order:
        if bonus_cost_key(row.legacy_key) in legacy:
            continue
        held = booked[(row.assignment_id, row.content)]
        if row.grant_time is None:
            if held.undated is not None or held.grants:
                continue
            held.undated = bonus_cost_key(row.key)
        else:
            grant = row.grant_time.isoformat()
            if grant in held.grants:
                continue
            held.grants.add(grant)
            if held.undated is not None:
                claims.append(Claim(undated_key=held.undated, key=row.key))
                held.undated = None
        new.append((row, assignment))
    return sorted(new, key=lambda pair: pair[0].line), claims


def _find_legacy_undated(rows: Sequence[tuple[Any, Any]], booked: dict[tuple[str, str], _Booked]) -> None:
    """An undated booking of the earlier scheme, found by its exact key from each dated row's own content (the
    content read back from a memo fails when the memo was cut at 255 characters or its file's name holds "): ")."""
    candidates = {
        bonus_cost_key(legacy_bonus_key(row.assignment_id, row.worker_id, row.amount, row.reason, None)): row
        for row, _ in rows
        if row.grant_time is not None
    }
    standing = (
        _standing_bonuses().filter(idempotency_key__in=list(candidates)).values_list("idempotency_key", flat=True)
    )
    for key in standing:
        row = candidates[key]
        held = booked[(row.assignment_id, row.content)]
        if held.undated is None:
            held.undated = key


def reverse_claimed(claims: Sequence[Claim], *, source: str) -> int:
    """Cancel each claimed undated booking (its bonus row and the fee row booked with it) by a reversal row,
    once; returns the reversal rows written. Call it in the transaction that books the dated rows."""
    if not claims:
        return 0
    wanted = {claim.undated_key: claim for claim in claims}
    wanted.update({f"{claim.undated_key}:fee": claim for claim in claims})
    written = 0
    for entry in CostEntry.objects.filter(idempotency_key__in=list(wanted)).order_by("id"):
        claim = wanted[entry.idempotency_key]
        _, created = reverse_cost(
            entry=entry,
            idempotency_key=f"{entry.idempotency_key}:replaced",
            memo=f"replaced by the dated bonus {claim.key} ({source})"[:255],
        )
        written += created
    return written
