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
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import F, Q, Sum
from django.db.models.functions import Round
from django.utils import timezone

from tasks.models import (
    Assignment,
    BudgetAlert,
    BudgetReservation,
    CostEntry,
    CostKind,
    CostStatus,
    Job,
    JobCostTally,
    MonthlyBudget,
)
from tasks.services.budget import (
    ALERT_THRESHOLDS,
    AMOUNT_STEP,
    ZERO,
    BudgetExceeded,
    ReservationConflict,
    exact,
    format_amount,
    job_cap_message,
    month_cap_message,
    month_of,
    send_alert_mail,
)
from tasks.services.errors import ServiceError
from tasks.services.ledger import CostLine, LedgerConflict, bonus_cost_key, record_costs
from tasks.services.review import another_bonus, bonus_marketplace, bonus_paid_event, pay_bonus
from workforce.audit import Actor, QueuedEvent, record_audit_events
from workforce.models import Marketplace, Worker

PLACES = Decimal("0.0001")  # the budget columns' precision (``_plus`` rounds to it in SQL)
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
    """A concurrent reservation or booking changed what the run was decided on; it is rolled back."""


class _Booked(NamedTuple):
    job_id: int
    worker_id: int | None
    amount: Decimal
    kind: str
    currency: str


@dataclass
class _JobBudget:
    cap: Decimal | None
    reserved: Decimal
    currency: str
    start: Decimal = ZERO  # ``reserved`` as read under the lock
    spent: Decimal = ZERO  # the ledger's total for the job (read only for jobs with a cap)
    alerts: set[int] = field(default_factory=set)


@dataclass
class _Run:
    """What a run of internal bonuses will write, decided bonus by bonus in memory."""

    now: datetime
    month: date
    jobs: dict[int, _JobBudget]
    months: dict[str, MonthlyBudget]  # by currency; ``reserved`` as it stands after the bonuses so far
    booked: dict[str, _Booked]  # cost keys
    reserved: dict[str, tuple[int, Decimal]]  # reservation keys: (job, amount)
    month_start: dict[str, Decimal] = field(default_factory=dict)
    reservations: list[BudgetReservation] = field(default_factory=list)
    lines: list[CostLine] = field(default_factory=list)
    alerts: list[BudgetAlert] = field(default_factory=list)
    events: list[QueuedEvent] = field(default_factory=list)
    emails: list[tuple[str, str, list[str]]] = field(default_factory=list)


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
    except (_Raced, IntegrityError, OperationalError) as exc:
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
    now = timezone.now()
    job_ids = sorted({bonus.job.pk for bonus in bonuses})
    # FOR NO KEY UPDATE: the lock ``reserve_budget``'s update of the row takes; rows referring to the job
    # (assignments, ledger rows) can still be inserted meanwhile.
    locked = Job.objects.select_for_update(no_key=True).filter(pk__in=job_ids).order_by("pk")
    jobs = {
        pk: _JobBudget(cap=cap, reserved=reserved, currency=currency, start=reserved)
        for pk, cap, reserved, currency in locked.values_list("pk", "budget_cap", "budget_reserved", "currency")
    }
    keys = [bonus_cost_key(bonus.key) for bonus in bonuses]
    booked = {
        key: _Booked(job_id, worker_id, amount, kind, currency)
        for key, job_id, worker_id, amount, kind, currency in CostEntry.objects.filter(
            idempotency_key__in=keys
        ).values_list("idempotency_key", "job_id", "worker_id", "amount", "kind", "currency")
    }
    reserved = {
        key: (job_id, amount)
        for key, job_id, amount in BudgetReservation.objects.filter(
            key__in=[f"{key}:reserve" for key in keys]
        ).values_list("key", "job_id", "amount")
    }
    month = month_of(now)
    currencies = {bonus.job.currency for bonus in bonuses}
    months = {row.currency: row for row in MonthlyBudget.objects.filter(month=month, currency__in=currencies)}
    capped = [pk for pk, budget in jobs.items() if budget.cap]
    if capped:
        spent = JobCostTally.objects.filter(job_id__in=capped).values("job_id").annotate(total=Sum("amount"))
        for row in spent.order_by():
            jobs[row["job_id"]].spent = exact(row["total"])
        for job_id, threshold in BudgetAlert.objects.filter(job_id__in=capped).values_list("job_id", "threshold"):
            jobs[job_id].alerts.add(threshold)
    return _Run(
        now=now,
        month=month,
        jobs=jobs,
        months=months,
        booked=booked,
        reserved=reserved,
        month_start={currency: row.reserved for currency, row in months.items()},
    )


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
    if (held := run.reserved.get(reserve_key)) is not None:  # ``reserve_budget`` finds its key reserved
        if held[0] != job.pk or abs(held[1] - amount) >= AMOUNT_STEP:
            raise ReservationConflict(
                f"Budget key {reserve_key!r} reserved {held[1]} for job {held[0]}; refusing to "
                f"reuse it for {amount} on job {job.pk} (a key names one reservation of one amount)."
            )
        if booked is None or booked[:3] != same:  # ``_refuse_another_bonus(missing_ok=False)``
            raise another_bonus(key)
        return False
    budget = run.jobs[job.pk]
    reserved = (budget.reserved + amount).quantize(PLACES, ROUND_HALF_UP)
    if budget.cap is not None and budget.cap < reserved:
        message = job_cap_message(
            job, amount=amount, cap=budget.cap, reserved=budget.reserved, currency=budget.currency
        )
        raise BudgetExceeded(message)
    monthly = run.months.get(job.currency)
    month_reserved = ZERO if monthly is None else (monthly.reserved + amount).quantize(PLACES, ROUND_HALF_UP)
    if monthly is not None and monthly.cap < month_reserved:
        raise BudgetExceeded(month_cap_message(monthly, amount))
    if booked is not None and (booked.kind != CostKind.BONUS or booked.currency != job.currency):  # ``record_cost``
        raise LedgerConflict(
            f"Ledger key {cost_key!r} was booked as {booked.kind} {booked.amount} {booked.currency}; "
            f"refusing to book it again as {CostKind.BONUS} {amount} {job.currency}."
        )
    # Paid: what ``reserve_budget``, ``record_cost``, the audit and ``check_budget_alerts`` would write.
    budget.reserved = reserved
    if monthly is not None:
        run.months[job.currency] = _with_reserved(monthly, month_reserved)
    run.reserved[reserve_key] = (job.pk, amount)
    run.reservations.append(
        BudgetReservation(
            job_id=job.pk, amount=amount, key=reserve_key, reason="bonus", month=run.month, created_at=run.now
        )
    )
    run.events.append(
        QueuedEvent(
            actor=actor,
            action="budget.reserved",
            object_type="job_budget",
            object_id=job.pk,
            after={"amount": str(amount), "key": reserve_key, "month": run.month.isoformat()},
            reason="bonus",
        )
    )
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
                created_at=run.now,
            )
        )
        budget.spent = exact(budget.spent + amount)
    run.events.append(
        bonus_paid_event(actor=actor, job=job, worker=worker, amount=amount, key=key, reason=bonus.reason)
    )
    _alerts(run, job, budget, actor=actor)
    return True


def _with_reserved(monthly: MonthlyBudget, reserved: Decimal) -> MonthlyBudget:
    """A copy of the month's row as it stands after a reservation (the row read stays as read)."""
    row = MonthlyBudget(pk=monthly.pk, month=monthly.month, cap=monthly.cap, currency=monthly.currency)
    row.reserved = reserved
    return row


def _alerts(run: _Run, job: Job, budget: _JobBudget, *, actor: Actor) -> None:
    """``check_budget_alerts`` after one bonus: each threshold its spend has reached, once per job."""
    if not budget.cap:
        return
    spent, cap = budget.spent, budget.cap
    raised = [t for t in ALERT_THRESHOLDS if spent * 100 >= cap * t and t not in budget.alerts]
    for threshold in raised:
        budget.alerts.add(threshold)
        run.alerts.append(BudgetAlert(job_id=job.pk, threshold=threshold, spent=spent, cap=cap, created_at=run.now))
        run.events.append(
            QueuedEvent(
                actor=actor,
                action="budget.alert",
                object_type="job_budget",
                object_id=job.pk,
                after={"threshold": threshold, "spent": str(spent), "cap": str(cap)},
            )
        )
    recipients = list(getattr(settings, "FINANCE_ALERT_EMAILS", []) or [])
    if raised and recipients:
        subject = f"Job {job.pk} ({job.name}) has spent {max(raised)}% of its budget"
        run.emails.append(
            (subject, f"Spent {format_amount(spent)} of {format_amount(cap)} {job.currency}.", recipients)
        )


def _write(run: _Run) -> None:
    """Write the run's rows in bulk in ``pay_bonus``'s order, so its locks are taken in the same order: the
    reservations and the job rows, the audit chain head, the month rows, then the ledger (its tallies) and the
    alerts. Raise ``_Raced`` when a guarded update or the ledger finds the database changed under it."""
    if not run.events:
        return
    BudgetReservation.objects.bulk_create(run.reservations)
    for job_id, budget in run.jobs.items():
        if budget.reserved == budget.start:
            continue
        delta = budget.reserved - budget.start  # exact: both have the column's 4 places
        within = Q(budget_cap__isnull=True) | Q(budget_cap__gte=Round(F("budget_reserved") + delta, 4))
        if not Job.objects.filter(within, pk=job_id).update(budget_reserved=Round(F("budget_reserved") + delta, 4)):
            raise _Raced(f"job {job_id}")
    record_audit_events(run.events)
    for currency, row in sorted(run.months.items()):
        delta = row.reserved - run.month_start[currency]
        if delta and not MonthlyBudget.objects.filter(pk=row.pk, cap__gte=Round(F("reserved") + delta, 4)).update(
            reserved=Round(F("reserved") + delta, 4)
        ):
            raise _Raced(f"month {row.month:%Y-%m} {currency}")
    if record_costs(run.lines) != len(run.lines):  # a key booked since it was read
        raise _Raced("ledger")
    BudgetAlert.objects.bulk_create(run.alerts)
    for subject, body, recipients in run.emails:
        _send_on_commit(subject, body, recipients)


def _send_on_commit(subject: str, body: str, recipients: list[str]) -> None:
    """The alert email, once the bonuses that crossed the threshold are committed (as ``check_budget_alerts``)."""
    transaction.on_commit(lambda: send_alert_mail(subject, body, recipients))
