"""Paying many bonuses at once (a reviewer's selection, the fair-pay top-up) with the rules of ``pay_bonus``.

``pay_bonuses`` gives each bonus the outcome ``tasks.services.review.pay_bonus`` would have given it, called
once per bonus in the same order: the same refusals with the same sentences, the same ledger rows, budget
reservations, alerts and audit events (in the same order, with the same payloads), and a key paid before
pays nothing again. Internal-pool bonuses are booked set-based, in one transaction per run of consecutive
internal bonuses: the jobs are locked and the keys, reservations, monthly caps, spend and alerts read in a
handful of queries, the run is played out in memory bonus by bonus (each one sees the reservations of the
ones before it, as it would after their commits), and its rows are written in bulk, its audit events in one
batch. MTurk bonuses stay one ``pay_bonus`` call each (its intent row is committed before ``SendBonus``, with
a token from the key), so their crash-safety is the same; the network call dominates their cost anyway.
The budget's side of a run (job and month caps, reservation keys, alerts and their emails) is
``tasks.services.budget_bulk``, which decides with the rules of ``tasks.services.budget`` itself.

Locks are taken in ``pay_bonus``'s order: the job rows (in id order, FOR NO KEY UPDATE, as its update of the
row), the audit chain head, the month rows, then the ledger's tallies. The month rows are read unlocked and
updated under their cap in the ``WHERE`` clause. Should a concurrent reservation have taken the month's room
meanwhile, or a concurrent call booked one of the run's keys (on PostgreSQL, a ``pay_bonus`` of the same key
can also deadlock with the run), the run is rolled back and paid one bonus at a time through ``pay_bonus``,
which decides each as it always does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import NamedTuple

from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from tasks.models import Assignment, CostEntry, CostKind, CostStatus, Job
from tasks.services.budget_bulk import BudgetRaced, BudgetRun, lock_budgets
from tasks.services.errors import ServiceError
from tasks.services.ledger import CostLine, LedgerConflict, bonus_cost_key, record_costs
from tasks.services.review import another_bonus, bonus_marketplace, bonus_paid_event, pay_bonus
from workforce.audit import Actor
from workforce.models import Marketplace, Worker

DEADLOCK = "40P01"  # PostgreSQL: a ``pay_bonus`` of one of the run's keys took its key, then waited for the job


@dataclass(frozen=True)
class BonusRequest:
    """One bonus to pay: the arguments of ``pay_bonus`` but the actor."""

    job: Job
    worker: Worker
    amount: Decimal
    reason: str
    key: str
    assignment: Assignment | None = None


@dataclass(frozen=True)
class BonusOutcome:
    """What ``pay_bonus`` would have done: ``paid`` True (booked now), False (the key was paid before), or
    ``error``, the refusal it would have raised (nothing booked)."""

    paid: bool
    error: ServiceError | None = None


class _Raced(Exception):
    """A concurrent booking of one of the run's keys changed what it was decided on; it is rolled back (as on
    ``BudgetRaced``, a concurrent reservation)."""


class _Booked(NamedTuple):
    job_id: int
    worker_id: int | None
    amount: Decimal
    kind: str
    currency: str


@dataclass
class _Run:
    """What a run of internal bonuses will write, decided bonus by bonus in memory: its budgets (reservations,
    alerts, the audit events) and its ledger rows."""

    budgets: BudgetRun
    booked: dict[str, _Booked]  # cost keys
    lines: list[CostLine] = field(default_factory=list)


def pay_bonuses(*, bonuses: Sequence[BonusRequest], actor: Actor, stop_at_refusal: bool = False) -> list[BonusOutcome]:
    """Pay each bonus once per key, as ``pay_bonus`` called once per bonus in order would; one outcome per
    bonus, in order. ``stop_at_refusal``: as a loop of ``pay_bonus`` calls that a refusal ends, the bonuses
    after the first refused one are not attempted and the refusal is raised once the ones before it are
    committed."""
    outcomes: list[BonusOutcome] = []
    run: list[BonusRequest] = []
    for bonus in [*bonuses, None]:  # None: the end, which closes the last run
        if bonus is not None and not _is_mturk(bonus):
            run.append(bonus)
            continue
        if run:
            outcomes += _pay_internal(run, actor=actor, stop_at_refusal=stop_at_refusal)
            run = []
            if stop_at_refusal and (refused := _first_error(outcomes)):
                raise refused
        if bonus is not None:
            outcomes.append(_one(bonus, actor=actor))
            if stop_at_refusal and (refused := _first_error(outcomes)):
                raise refused
    return outcomes


def _first_error(outcomes: list[BonusOutcome]) -> ServiceError | None:
    return next((outcome.error for outcome in outcomes if outcome.error is not None), None)


def _is_mturk(bonus: BonusRequest) -> bool:
    """Whether ``pay_bonus`` sends this bonus through MTurk (one it refuses outright joins the internal run,
    which refuses it in its place)."""
    try:
        return _marketplace(bonus) == Marketplace.MTURK
    except ServiceError:
        return False


def _marketplace(bonus: BonusRequest) -> str:
    """``pay_bonus``'s checks of its arguments (``ServiceError``) and the marketplace the bonus goes through."""
    return bonus_marketplace(
        job=bonus.job, worker=bonus.worker, amount=bonus.amount, reason=bonus.reason, assignment=bonus.assignment
    )


def _one(bonus: BonusRequest, *, actor: Actor) -> BonusOutcome:
    """One bonus through ``pay_bonus`` (its own transaction; MTurk's crash-safe path)."""
    try:
        paid = pay_bonus(
            job=bonus.job,
            worker=bonus.worker,
            amount=bonus.amount,
            reason=bonus.reason,
            key=bonus.key,
            actor=actor,
            assignment=bonus.assignment,
        )
    except ServiceError as exc:
        return BonusOutcome(paid=False, error=exc)
    return BonusOutcome(paid=paid)


def _pay_internal(bonuses: list[BonusRequest], *, actor: Actor, stop_at_refusal: bool) -> list[BonusOutcome]:
    """A run of bonuses that are not MTurk's, set-based; one at a time if a concurrent change got in."""
    try:
        with transaction.atomic():
            return _book(bonuses, actor=actor, stop_at_refusal=stop_at_refusal)
    except (_Raced, BudgetRaced, IntegrityError, OperationalError) as exc:
        if isinstance(exc, OperationalError) and getattr(exc.__cause__, "sqlstate", None) != DEADLOCK:
            raise
        outcomes: list[BonusOutcome] = []
        for bonus in bonuses:
            outcomes.append(_one(bonus, actor=actor))
            if stop_at_refusal and outcomes[-1].error is not None:
                break
        return outcomes


def _book(bonuses: list[BonusRequest], *, actor: Actor, stop_at_refusal: bool) -> list[BonusOutcome]:
    run = _read(bonuses)
    outcomes: list[BonusOutcome] = []
    for bonus in bonuses:
        try:
            _marketplace(bonus)  # refused before anything else is checked, as ``pay_bonus`` does
            outcomes.append(BonusOutcome(paid=_decide(run, bonus, actor=actor)))
        except ServiceError as exc:
            outcomes.append(BonusOutcome(paid=False, error=exc))
            if stop_at_refusal:
                break
    _write(run)
    return outcomes


def _read(bonuses: list[BonusRequest]) -> _Run:
    """Lock the jobs (id order) and read what the run is decided on: a handful of queries whatever its size."""
    keys = [bonus_cost_key(bonus.key) for bonus in bonuses]
    budgets = lock_budgets(
        jobs=[bonus.job for bonus in bonuses], keys=[f"{key}:reserve" for key in keys], now=timezone.now()
    )
    booked = {
        key: _Booked(job_id, worker_id, amount, kind, currency)
        for key, job_id, worker_id, amount, kind, currency in CostEntry.objects.filter(
            idempotency_key__in=keys
        ).values_list("idempotency_key", "job_id", "worker_id", "amount", "kind", "currency")
    }
    return _Run(budgets=budgets, booked=booked)


def _decide(run: _Run, bonus: BonusRequest, *, actor: Actor) -> bool:
    """``pay_bonus``'s internal-pool branch for one bonus, on the run's state in memory: raise its refusal,
    return False for a key paid before, else record what it books and return True."""
    job, worker, amount, key = bonus.job, bonus.worker, bonus.amount, bonus.key
    cost_key = bonus_cost_key(key)
    reserve_key = f"{cost_key}:reserve"
    same = (job.pk, worker.pk, amount)
    booked = run.booked.get(cost_key)
    if booked is not None and booked[:3] != same:  # ``_refuse_another_bonus(missing_ok=True)``
        raise another_bonus(key)
    budgets = run.budgets
    if not budgets.check(job=job, amount=amount, key=reserve_key):  # ``reserve_budget``: its key reserved before
        if booked is None or booked[:3] != same:  # ``_refuse_another_bonus(missing_ok=False)``
            raise another_bonus(key)
        return False
    if booked is not None and (booked.kind != CostKind.BONUS or booked.currency != job.currency):  # ``record_cost``
        raise LedgerConflict(
            f"Ledger key {cost_key!r} was booked as {booked.kind} {booked.amount} {booked.currency}; "
            f"refusing to book it again as {CostKind.BONUS} {amount} {job.currency}."
        )
    # Paid: what ``reserve_budget``, ``record_cost``, the audit and ``check_budget_alerts`` would write.
    budgets.reserve(job=job, amount=amount, key=reserve_key, reason="bonus", actor=actor)
    if booked is None:
        run.booked[cost_key] = _Booked(job.pk, worker.pk, amount, CostKind.BONUS, job.currency)
        run.lines.append(
            CostLine(
                job_id=job.pk,
                kind=CostKind.BONUS,
                amount=amount,
                idempotency_key=cost_key,
                marketplace=Marketplace.INTERNAL,
                status=CostStatus.COMMITTED,
                currency=job.currency,
                assignment_id=bonus.assignment.pk if bonus.assignment is not None else None,
                worker_id=worker.pk,
                memo=bonus.reason[:255],
                created_at=budgets.now,
            )
        )
        budgets.spend(job=job, amount=amount)
    budgets.events.append(
        bonus_paid_event(actor=actor, job=job, worker=worker, amount=amount, key=key, reason=bonus.reason)
    )
    budgets.raise_alerts(job=job, actor=actor)
    return True


def _write(run: _Run) -> None:
    """Write the run's rows in bulk in ``pay_bonus``'s order, so its locks are taken in the same order: the
    reservations and the job rows, the audit chain head, the month rows, then the ledger (its tallies) and the
    alerts. Raise ``BudgetRaced`` when a cap's guarded update, ``_Raced`` when the ledger, finds the database
    changed under it."""
    if not run.budgets.events:
        return
    run.budgets.write_reservations()
    if record_costs(run.lines) != len(run.lines):  # a key booked since it was read
        raise _Raced("ledger")
    run.budgets.write_alerts()
