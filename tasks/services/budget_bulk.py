"""Many budget reservations at once, with the rules of ``tasks.services.budget`` (``reserve_budget`` and
``check_budget_alerts`` called once per reservation, in order).

``lock_budgets`` locks the jobs (in id order) and reads what a run is decided on in a handful of queries
whatever its size: the reservation keys already used, the month rows, and for capped jobs their spend and the
alerts raised. The run is then decided in memory, one reservation at a time, each seeing the ones before it as
it would after their commits: ``BudgetRun.check`` refuses what ``reserve_budget`` would refuse (the same
exceptions and sentences, from ``budget``'s own cap rule, messages and key rule), ``reserve`` records it, and
``raise_alerts`` plays ``check_budget_alerts``. ``write_reservations`` and ``write_alerts`` then write it set-based
in ``reserve_budget``'s lock order (the job rows, the audit chain head, the month rows; the alerts last), and
raise ``BudgetRaced`` when a guarded update finds that a concurrent reservation took the room the run was
decided on (the caller rolls the run back and decides it again one reservation at a time).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Sum

from tasks.models import BudgetAlert, BudgetReservation, Job, JobCostTally, MonthlyBudget
from tasks.services.budget import (
    ZERO,
    BudgetExceeded,
    add_to_job_reserved,
    add_to_month_reserved,
    alert_event,
    alerts_reached,
    exact,
    job_cap_message,
    mail_alerts,
    month_cap_message,
    month_of,
    reservation_conflict,
    reserved_after,
    reserved_event,
    within_cap,
)
from workforce.audit import Actor, QueuedEvent, record_audit_events


class BudgetRaced(Exception):
    """A concurrent reservation took the room a run was decided on; the run must be rolled back."""


@dataclass
class _JobBudget:
    cap: Decimal | None
    currency: str
    reserved: Decimal  # as it stands after the run's reservations so far
    start: Decimal  # as read under the lock
    spent: Decimal = ZERO  # the ledger's total for the job (read only for jobs with a cap)
    alerts: set[int] = field(default_factory=set)


@dataclass
class _Month:
    row: MonthlyBudget  # ``reserved`` as it stands after the run's reservations so far
    start: Decimal  # ``reserved`` as read


@dataclass
class _Mail:
    job: Job
    thresholds: list[int]
    spent: Decimal
    cap: Decimal


@dataclass
class BudgetRun:
    """The budgets of a run of reservations, decided in memory and written set-based."""

    now: datetime
    month: date
    jobs: dict[int, _JobBudget]
    months: dict[str, _Month]  # by currency
    held: dict[str, tuple[int, Decimal]]  # reservation keys used before or in the run: (job, amount)
    events: list[QueuedEvent] = field(default_factory=list)  # the run's audit events, a caller's among them
    reservations: list[BudgetReservation] = field(default_factory=list)
    alerts: list[BudgetAlert] = field(default_factory=list)
    mails: list[_Mail] = field(default_factory=list)

    def check(self, *, job: Job, amount: Decimal, key: str) -> bool:
        """Raise what ``reserve_budget`` would raise for this reservation now (``ReservationConflict``,
        ``BudgetExceeded``); False when ``key`` names a reservation of this amount for this job already (it
        would return ``created`` False), True when it would reserve."""
        if (held := self.held.get(key)) is not None:
            conflict = reservation_conflict(key=key, held=held, job_id=job.pk, amount=amount)
            if conflict is not None:
                raise conflict
            return False
        budget = self.jobs[job.pk]
        if not within_cap(budget.cap, budget.reserved, amount):
            raise BudgetExceeded(
                job_cap_message(
                    job, amount=amount, cap=budget.cap or ZERO, reserved=budget.reserved, currency=budget.currency
                )
            )
        monthly = self.months.get(job.currency)  # the job's own currency's cap
        if monthly is not None and not within_cap(monthly.row.cap, monthly.row.reserved, amount):
            raise BudgetExceeded(month_cap_message(monthly.row, amount))
        return True

    def reserve(self, *, job: Job, amount: Decimal, key: str, reason: str, actor: Actor) -> None:
        """Reserve as ``reserve_budget`` would (a reservation ``check`` finds already made reserves nothing):
        its row, its audit event, the job's and the month's running sums."""
        if not self.check(job=job, amount=amount, key=key):
            return
        budget = self.jobs[job.pk]
        budget.reserved = reserved_after(budget.reserved, amount)
        if (monthly := self.months.get(job.currency)) is not None:
            monthly.row.reserved = reserved_after(monthly.row.reserved, amount)
        self.held[key] = (job.pk, amount)
        self.reservations.append(
            BudgetReservation(
                job_id=job.pk, amount=amount, key=key, reason=reason, month=self.month, created_at=self.now
            )
        )
        self.events.append(
            reserved_event(actor=actor, job_id=job.pk, amount=amount, key=key, month=self.month, reason=reason)
        )

    def spend(self, *, job: Job, amount: Decimal) -> None:
        """Count ``amount`` booked on the job's ledger in the run (its alerts are raised from its spend)."""
        budget = self.jobs[job.pk]
        budget.spent = exact(budget.spent + amount)

    def raise_alerts(self, *, job: Job, actor: Actor) -> None:
        """``check_budget_alerts`` for the job now: each threshold its spend has reached, once per job."""
        budget = self.jobs[job.pk]
        if not budget.cap:
            return
        spent, cap = budget.spent, budget.cap
        raised = alerts_reached(spent=spent, cap=cap, done=budget.alerts)
        for threshold in raised:
            budget.alerts.add(threshold)
            self.alerts.append(
                BudgetAlert(job_id=job.pk, threshold=threshold, spent=spent, cap=cap, created_at=self.now)
            )
            self.events.append(alert_event(actor=actor, job_id=job.pk, threshold=threshold, spent=spent, cap=cap))
        if raised:
            self.mails.append(_Mail(job=job, thresholds=raised, spent=spent, cap=cap))

    def write_reservations(self) -> None:
        """Write the reservation rows, the job rows, the run's audit events and the month rows, in this order
        (``reserve_budget``'s lock order). Raise ``BudgetRaced`` when a cap's guard refuses an update."""
        BudgetReservation.objects.bulk_create(self.reservations)
        for job_id, budget in self.jobs.items():
            # exact: both have the column's 4 places
            if budget.reserved != budget.start and not add_to_job_reserved(job_id, budget.reserved - budget.start):
                raise BudgetRaced(f"job {job_id}")
        record_audit_events(self.events)
        for currency, month in sorted(self.months.items()):
            delta = month.row.reserved - month.start
            if delta and not add_to_month_reserved(MonthlyBudget.objects.filter(pk=month.row.pk), delta):
                raise BudgetRaced(f"month {month.row.month:%Y-%m} {currency}")

    def write_alerts(self) -> None:
        """Write the alerts raised and send their emails once the run is committed."""
        BudgetAlert.objects.bulk_create(self.alerts)
        for mail in self.mails:
            mail_alerts(job=mail.job, thresholds=mail.thresholds, spent=mail.spent, cap=mail.cap)


def lock_budgets(*, jobs: Sequence[Job], keys: Iterable[str], now: datetime) -> BudgetRun:
    """Lock the jobs' rows (id order) and read what a run of reservations under ``keys`` on ``jobs`` is decided
    on, in the month of ``now``."""
    # FOR NO KEY UPDATE: the lock ``reserve_budget``'s update of the row takes; rows referring to the job
    # (assignments, ledger rows) can still be inserted meanwhile.
    locked = Job.objects.select_for_update(no_key=True).filter(pk__in=sorted({job.pk for job in jobs})).order_by("pk")
    budgets = {
        pk: _JobBudget(cap=cap, currency=currency, reserved=reserved, start=reserved)
        for pk, cap, reserved, currency in locked.values_list("pk", "budget_cap", "budget_reserved", "currency")
    }
    held = {
        key: (job_id, amount)
        for key, job_id, amount in BudgetReservation.objects.filter(key__in=list(keys)).values_list(
            "key", "job_id", "amount"
        )
    }
    month = month_of(now)
    currencies = {job.currency for job in jobs}
    months = {
        row.currency: _Month(row=row, start=row.reserved)
        for row in MonthlyBudget.objects.filter(month=month, currency__in=currencies)
    }
    capped = [pk for pk, budget in budgets.items() if budget.cap]
    if capped:
        spent = JobCostTally.objects.filter(job_id__in=capped).values("job_id").annotate(total=Sum("amount"))
        for row in spent.order_by():
            budgets[row["job_id"]].spent = exact(row["total"])
        for job_id, threshold in BudgetAlert.objects.filter(job_id__in=capped).values_list("job_id", "threshold"):
            budgets[job_id].alerts.add(threshold)
    return BudgetRun(now=now, month=month, jobs=budgets, months=months, held=held)
