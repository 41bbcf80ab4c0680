"""Which bonuses of an MTurk bonus file the ledger holds already, whichever kind of file booked them.

A team moving off MTurk may hold the same bonus twice: in the bulk-bonus file it paid from (no grant time)
and in ListBonusPayments flattened to CSV (with ``GrantTime``). The ledger keys say what a booking was:
``bonus:mturk:<AssignmentId>:<content>:<grant>``, ``content`` a digest of the assignment, worker, amount and
reason, ``grant`` the grant time (ISO 8601) or ``-`` when the file had none. So, per assignment and content:

- a row without a grant time is booked already when any bonus of that content is (the bulk file's bonus is
  one of those MTurk lists; several identical bonuses on one assignment cannot be told apart without a time);
- a row with a grant time is booked already when that time is. Otherwise, when an undated booking of the
  content is still unclaimed, that booking is this bonus: its bonus and fee rows take the row's key and are
  dated at its grant time (``Claim``), once, so a later file with another grant time of the same content
  books that one, and the bulk file imported again books nothing. The earliest grant time claims first.

Keys written before this scheme (``bonus:mturk:<AssignmentId>:<digest>``, the digest over the content and
the grant time) are still honoured exactly; they take no part in matching across the two kinds of file.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Q

from tasks.models import CostEntry, CostKind
from tasks.services.ledger import bonus_cost_key

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
    grants: set[str] = field(default_factory=set)
    undated: bool = False


@dataclass(frozen=True)
class Claim:
    """An undated booking found to be the bonus a dated row names: re-keyed and dated at ``grant_time``."""

    undated_key: str
    key: str
    grant_time: datetime


def _booked(assignment_ids: Iterable[str]) -> dict[tuple[str, str], _Booked]:
    """Per (assignment, content): the grant times booked, and whether an undated booking exists."""
    found: dict[tuple[str, str], _Booked] = defaultdict(_Booked)
    ids = sorted(set(assignment_ids))
    for start in range(0, len(ids), _CHUNK):
        prefixes = Q()
        for assignment_id in ids[start : start + _CHUNK]:
            prefixes |= Q(idempotency_key__startswith=bonus_cost_key(f"mturk:{assignment_id}:"))
        keys = CostEntry.objects.filter(prefixes, kind=CostKind.BONUS).values_list("idempotency_key", flat=True)
        for key in keys:
            parts = key.split(":", 4)  # bonus, mturk, assignment, content, grant (the grant holds colons)
            if len(parts) != 5:
                continue  # a key of the earlier scheme
            booked = found[(parts[2], parts[3])]
            if parts[4] == UNDATED:
                booked.undated = True
            else:
                booked.grants.add(parts[4])
    return found


def unbooked(rows: Sequence[tuple[Any, Any]]) -> tuple[list[tuple[Any, Any]], list[Claim]]:
    """The ``(row, assignment)`` pairs still to book, and the undated bookings the dated rows claim. A row has
    ``assignment_id``, ``content``, ``key``, ``legacy_key`` and ``grant_time`` (``bonuses.BonusRow``)."""
    legacy = set(
        CostEntry.objects.filter(idempotency_key__in=[bonus_cost_key(row.legacy_key) for row, _ in rows]).values_list(
            "idempotency_key", flat=True
        )
    )
    booked = _booked(row.assignment_id for row, _ in rows)
    new: list[tuple[Any, Any]] = []
    claims: list[Claim] = []
    # dated rows first, earliest first, so the earliest grant time claims an undated booking
    order = sorted(rows, key=lambda pair: (pair[0].grant_time is None, pair[0].grant_time or datetime.min))
    for row, assignment in order:
        if bonus_cost_key(row.legacy_key) in legacy:
            continue
        held = booked[(row.assignment_id, row.content)]
        if row.grant_time is None:
            if held.undated or held.grants:
                continue
            held.undated = True
        else:
            grant = row.grant_time.isoformat()
            if grant in held.grants:
                continue
            held.grants.add(grant)
            if held.undated:
                held.undated = False
                claims.append(Claim(bonus_key(row.assignment_id, row.content, None), row.key, row.grant_time))
                continue
        new.append((row, assignment))
    return sorted(new, key=lambda pair: pair[0].line), claims


def apply_claims(claims: Sequence[Claim]) -> int:
    """Re-key and date the claimed bookings (bonus and fee rows) in bulk; returns the rows changed."""
    if not claims:
        return 0
    renamed: dict[str, tuple[str, datetime]] = {}
    for claim in claims:
        renamed[bonus_cost_key(claim.undated_key)] = (bonus_cost_key(claim.key), claim.grant_time)
        renamed[bonus_cost_key(claim.undated_key, "fee")] = (bonus_cost_key(claim.key, "fee"), claim.grant_time)
    entries = list(CostEntry.objects.filter(idempotency_key__in=list(renamed)))
    for entry in entries:
        entry.idempotency_key, entry.created_at = renamed[entry.idempotency_key]
    CostEntry.objects.bulk_update(entries, ["idempotency_key", "created_at"], batch_size=500)
    return len(entries)
