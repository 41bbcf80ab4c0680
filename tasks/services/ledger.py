"""The only writer of ``CostEntry`` rows.

Call these inside the transaction of the event that causes the cost (an approval, a marketplace
call's result, a bonus), so the money and the event commit or roll back together. Every write is keyed
by an idempotency key: booking the same key again returns the existing row and books nothing, and
booking it again with a different amount is refused, because it means two events share a key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from tasks.models import Assignment, CostEntry, CostKind, CostStatus, Hit, Job
from tasks.services.errors import ServiceError
from workforce.models import Worker

CENT = Decimal("0.01")


class LedgerConflict(ServiceError):
    """An idempotency key was booked before with different content."""


@dataclass(frozen=True)
class CostLine:
    """One row to book in bulk with ``record_costs``."""

    job_id: int
    kind: str
    amount: Decimal
    idempotency_key: str
    marketplace: str
    status: str = CostStatus.CHARGED
    currency: str = "USD"
    hit_id: int | None = None
    assignment_id: int | None = None
    worker_id: int | None = None
    reference: str = ""
    memo: str = ""
    created_at: datetime | None = None  # when the money moved, for history booked later (else: now)


def assignment_cost_key(assignment_id: int, part: str) -> str:
    """The one key scheme for what an approved assignment costs, on every marketplace and whichever path
    books it (our approval, MTurk's auto-approval seen by collect, the auto-approval guard):
    ``assignment:<pk>:pay`` (internal pool), ``assignment:<pk>:reward`` and ``assignment:<pk>:fee``."""
    return f"assignment:{assignment_id}:{part}"


def bonus_cost_key(key: str, part: str = "") -> str:
    """The one key scheme for bonuses, from the caller's bonus key: ``bonus:<key>`` and ``bonus:<key>:fee``."""
    return f"bonus:{key}:{part}" if part else f"bonus:{key}"


def _check_amount(kind: str, amount: Decimal) -> None:
    if not isinstance(amount, Decimal):
        raise TypeError("Ledger amounts must be Decimal.")
    if not amount.is_finite():
        raise ServiceError("A ledger amount must be a finite number.")
    if kind != CostKind.REVERSAL and amount < 0:
        raise ServiceError("Only a reversal can book a negative amount.")


def _same(entry: CostEntry, *, kind: str, amount: Decimal, currency: str) -> bool:
    return entry.kind == kind and entry.amount == amount and entry.currency == currency


def record_cost(
    *,
    job: Job,
    kind: str,
    amount: Decimal,
    idempotency_key: str,
    marketplace: str,
    status: str = CostStatus.CHARGED,
    currency: str | None = None,
    hit: Hit | None = None,
    assignment: Assignment | None = None,
    worker: Worker | None = None,
    reference: str = "",
    memo: str = "",
) -> tuple[CostEntry, bool]:
    """Book one amount once. Returns ``(entry, created)``; an existing key returns its row unchanged."""
    _check_amount(kind, amount)
    currency = currency or job.currency
    existing = CostEntry.objects.filter(idempotency_key=idempotency_key).first()
    if existing is None:
        try:
            with transaction.atomic():
                entry = CostEntry.objects.create(
                    job=job,
                    hit=hit,
                    assignment=assignment,
                    worker=worker,
                    marketplace=marketplace,
                    kind=kind,
                    status=status,
                    amount=amount,
                    currency=currency,
                    idempotency_key=idempotency_key,
                    reference=reference,
                    memo=memo,
                    created_at=timezone.now(),
                )
            return entry, True
        except IntegrityError:
            existing = CostEntry.objects.filter(idempotency_key=idempotency_key).first()
            if existing is None:
                raise
    if not _same(existing, kind=kind, amount=amount, currency=currency):
        raise LedgerConflict(
            f"Ledger key {idempotency_key!r} was booked as {existing.kind} {existing.amount} {existing.currency}; "
            f"refusing to book it again as {kind} {amount} {currency}."
        )
    return existing, False


def _entry(line: CostLine, now: datetime) -> CostEntry:
    return CostEntry(
        job_id=line.job_id,
        hit_id=line.hit_id,
        assignment_id=line.assignment_id,
        worker_id=line.worker_id,
        marketplace=line.marketplace,
        kind=line.kind,
        status=line.status,
        amount=line.amount,
        currency=line.currency,
        idempotency_key=line.idempotency_key,
        reference=line.reference,
        memo=line.memo,
        created_at=line.created_at or now,
    )


def _refuse_other(key: str, held: tuple[str, Decimal, str], line: CostLine) -> None:
    kind, amount, currency = held
    if (kind, amount, currency) != (line.kind, line.amount, line.currency):
        raise LedgerConflict(
            f"Ledger key {key!r} was booked as {kind} {amount} {currency}; "
            f"refusing to book it again as {line.kind} {line.amount} {line.currency}."
        )


def record_costs_once(lines: Sequence[CostLine]) -> list[CostLine]:
    """``record_cost`` for many lines, set-based: one read of the keys already booked, one insert of the new
    rows. A key booked before (or given twice) with other content is refused (``LedgerConflict``), as
    ``record_cost`` refuses it. Returns the lines booked now, in their order. Should another transaction book
    one of the keys meanwhile, the lines are booked one by one instead, so only the ones booked here are
    returned."""
    if not lines:
        return []
    held: dict[str, tuple[str, Decimal, str]] = {
        key: (kind, amount, currency)
        for key, kind, amount, currency in CostEntry.objects.filter(
            idempotency_key__in=[line.idempotency_key for line in lines]
        ).values_list("idempotency_key", "kind", "amount", "currency")
    }
    new: dict[str, CostLine] = {}
    for line in lines:
        _check_amount(line.kind, line.amount)
        key = line.idempotency_key
        if key in held:
            _refuse_other(key, held[key], line)
        elif key in new:
            _refuse_other(key, (new[key].kind, new[key].amount, new[key].currency), line)
        else:
            new[key] = line
    if not new:
        return []
    now = timezone.now()
    try:
        with transaction.atomic():
            CostEntry.objects.bulk_create([_entry(line, now) for line in new.values()])
        return list(new.values())
    except IntegrityError:  # another transaction booked one of the keys since the read: one by one below
        pass
    booked: list[CostLine] = []
    for key, line in new.items():
        try:
            with transaction.atomic():
                _entry(line, now).save(force_insert=True)
            booked.append(line)
        except IntegrityError:
            row = CostEntry.objects.filter(idempotency_key=key).values_list("kind", "amount", "currency").first()
            if row is None:
                raise
            _refuse_other(key, row, line)
    return booked


def record_costs(lines: Iterable[CostLine], *, batch_size: int = 5000) -> int:
    """Book many rows set-based; keys already booked are skipped. Returns how many rows were new."""
    now = timezone.now()
    rows: list[CostEntry] = []
    for line in lines:
        _check_amount(line.kind, line.amount)
        rows.append(_entry(line, now))
    # One read of the keys already booked per batch, then only the new rows are written (the first of a key
    # given twice); ``ignore_conflicts`` still covers a concurrent booking of the same key.
    new: dict[str, CostEntry] = {}
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        booked = set(
            CostEntry.objects.filter(idempotency_key__in=[row.idempotency_key for row in batch]).values_list(
                "idempotency_key", flat=True
            )
        )
        for row in batch:
            if row.idempotency_key not in booked:
                new.setdefault(row.idempotency_key, row)
    CostEntry.objects.bulk_create(list(new.values()), batch_size=batch_size, ignore_conflicts=True)
    return len(new)


def _reversal(entry: CostEntry, *, idempotency_key: str, memo: str, now: datetime) -> CostEntry:
    return CostEntry(
        job_id=entry.job_id,
        hit_id=entry.hit_id,
        assignment_id=entry.assignment_id,
        worker_id=entry.worker_id,
        marketplace=entry.marketplace,
        kind=CostKind.REVERSAL,
        status=entry.status,
        amount=-entry.amount,
        currency=entry.currency,
        idempotency_key=idempotency_key,
        reference=entry.reference,
        reverses=entry,
        memo=memo,
        created_at=now,
    )


def reverse_cost(*, entry: CostEntry, idempotency_key: str, memo: str = "") -> tuple[CostEntry, bool]:
    """Cancel ``entry`` with a reversal row of the opposite amount (once, whatever the retries)."""
    if entry.kind == CostKind.REVERSAL:
        raise ServiceError("A reversal cannot itself be reversed; book a new cost instead.")
    existing = CostEntry.objects.filter(reverses=entry).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            reversal = _reversal(entry, idempotency_key=idempotency_key, memo=memo, now=timezone.now())
            reversal.save(force_insert=True)
        return reversal, True
    except IntegrityError:
        existing = CostEntry.objects.filter(reverses=entry).first()
        if existing is None:
            raise
        return existing, False


def reverse_costs(reversals: Sequence[tuple[CostEntry, str, str]]) -> int:
    """``reverse_costs_each`` counted: the reversal rows written now."""
    return sum(reverse_costs_each(reversals))


def reverse_costs_each(reversals: Sequence[tuple[CostEntry, str, str]]) -> list[bool]:
    """``reverse_cost`` for many ``(entry, idempotency_key, memo)``, set-based: one insert of the reversal rows,
    in the order given. The caller has read the entries unreversed, best under a lock that keeps other reversals
    out (``mturk_escrow.settle_approved_slots`` holds their Hit rows); should one be reversed meanwhile all the
    same, the rows are written one by one with ``reverse_cost`` instead. Returns, for each, whether its reversal
    was written now."""
    if any(entry.kind == CostKind.REVERSAL for entry, _, _ in reversals):
        raise ServiceError("A reversal cannot itself be reversed; book a new cost instead.")
    if not reversals:
        return []
    now = timezone.now()
    try:
        with transaction.atomic():
            CostEntry.objects.bulk_create(
                [_reversal(entry, idempotency_key=key, memo=memo, now=now) for entry, key, memo in reversals]
            )
        return [True] * len(reversals)
    except IntegrityError:
        pass
    return [reverse_cost(entry=entry, idempotency_key=key, memo=memo)[1] for entry, key, memo in reversals]
