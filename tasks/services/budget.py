"""Budgets: reserve a job's worst-case cost before work is published or more answers are requested,
release it when work is rejected, cancelled or done, and raise 50/80/100% alerts.

A reservation is a ``BudgetReservation`` row plus conditional updates of the running sums
(``Job.budget_reserved``, ``MonthlyBudget.reserved``) guarded by the caps in their ``WHERE`` clause. On
PostgreSQL the second of two racing updates re-reads the row after the first commits and re-checks the
guard, so no interleaving can end above a cap. Every function is idempotent on its ``key``.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, Max, Q, QuerySet, Sum
from django.db.models.functions import Greatest, Round
from django.utils import timezone

from tasks.models import (
    Assignment,
    AssignmentState,
    BudgetAlert,
    BudgetReservation,
    Job,
    JobCostTally,
    JobState,
    MonthlyBudget,
)
from tasks.services.errors import ServiceError
from workforce.audit import Actor, QueuedEvent, record_audit_event, record_audit_events

logger = logging.getLogger(__name__)
ZERO = Decimal("0")
ALERT_THRESHOLDS = (50, 80, 100)
AMOUNT_STEP = Decimal("0.0001")  # the reservation columns' precision: amounts closer than this are the same


class BudgetExceeded(ServiceError):
    """Reserving the amount would take a job (or the month) above its cap; nothing was reserved."""


class ReservationConflict(ServiceError):
    """A reservation key was used before for another job or another amount (as ``LedgerConflict`` for
    the ledger): a stale key must never pass silently for a reservation it does not cover."""


def month_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date().replace(day=1)


def job_spent(job: Job) -> Decimal:
    """Everything the ledger holds for ``job`` (reversals included), committed or charged: the sum of the
    job's cost tallies, which the ledger's trigger keeps in the same transaction as every entry
    (``tasks.models.tallies``), so an approval reads a handful of rows, not the job's whole ledger."""
    return exact(JobCostTally.objects.filter(job_id=job.pk).aggregate(total=Sum("amount"))["total"])


def exact(total: Decimal | float | None) -> Decimal:
    """A database sum of 4-place amounts, exact: SQLite adds decimals as binary floats, whose error is
    far below the 4th place for any realistic number of rows."""
    if total is None:
        return ZERO
    return Decimal(str(total)).quantize(Decimal("0.0001"))


def check_budget(*, job: Job, amount: Decimal, now: datetime | None = None) -> None:
    """Raise ``BudgetExceeded`` when reserving ``amount`` now would break a cap (reads only)."""
    now = now or timezone.now()
    current = Job.objects.filter(pk=job.pk).values("budget_cap", "budget_reserved", "currency").first()
    if current is None:
        raise ServiceError(f"There is no job with id {job.pk}.")
    cap, reserved = current["budget_cap"], current["budget_reserved"]
    if not within_cap(cap, reserved, amount):  # the rule ``reserve_budget``'s guarded updates apply (4 places)
        raise BudgetExceeded(
            job_cap_message(job, amount=amount, cap=cap or ZERO, reserved=reserved, currency=current["currency"])
        )
    monthly = MonthlyBudget.objects.filter(month=month_of(now), currency=current["currency"]).first()
    if monthly is not None and not within_cap(monthly.cap, monthly.reserved, amount):
        raise BudgetExceeded(month_cap_message(monthly, amount))


def job_cap_message(job: Job, *, amount: Decimal, cap: Decimal, reserved: Decimal, currency: str) -> str:
    left = max(cap - reserved, ZERO)
    return (
        f"Job {job.pk} needs {format_amount(amount)} {currency} but only {format_amount(left)} of its "
        f"{format_amount(cap)} {currency} "
        f"budget cap is left ({format_amount(reserved)} already reserved); raise the cap or reduce the work."
    )


def month_cap_message(monthly: MonthlyBudget, amount: Decimal) -> str:
    left = max(monthly.cap - monthly.reserved, ZERO)
    return (
        f"This needs {format_amount(amount)} {monthly.currency} but only {format_amount(left)} of the "
        f"{format_amount(monthly.cap)} "
        f"{monthly.currency} monthly cap for {monthly.month:%Y-%m} is left; raise the monthly cap or wait."
    )


def format_amount(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01')):,}"


def reservation_conflict(
    *, key: str, held: tuple[int, Decimal], job_id: int, amount: Decimal
) -> ReservationConflict | None:
    """The refusal of ``key``, reserved before as ``held`` (job id, amount), for ``amount`` on ``job_id``; None
    when it names the same reservation (``reserve_budget`` reserves nothing)."""
    held_job_id, held_amount = held
    if held_job_id == job_id and abs(held_amount - amount) < AMOUNT_STEP:
        return None
    return ReservationConflict(
        f"Budget key {key!r} reserved {held_amount} for job {held_job_id}; refusing to "
        f"reuse it for {amount} on job {job_id} (a key names one reservation of one amount)."
    )


def reserved_after(reserved: Decimal, amount: Decimal) -> Decimal:
    """A running sum after reserving ``amount``, as ``_plus`` stores it (4 places)."""
    return (reserved + amount).quantize(AMOUNT_STEP, ROUND_HALF_UP)


def within_cap(cap: Decimal | None, reserved: Decimal, amount: Decimal) -> bool:
    """The cap rule (a sum plus a reservation, at 4 places, may reach its cap, not pass it; no cap, no limit) in
    memory (``check_budget``, ``budget_bulk``); ``add_to_job_reserved`` / ``add_to_month_reserved`` guard updates."""
    return cap is None or cap >= reserved_after(reserved, amount)


def _plus(field: str, amount: Decimal) -> Round:
    """``field + amount`` rounded to the columns' 4 places. SQLite adds decimals as floats: unrounded, the
    sums drift (0.8 + 0.05 stores 0.8500000000000001) and a reservation that fills a cap exactly is refused."""
    return Round(F(field) + amount, 4)


def add_to_job_reserved(job_id: int, amount: Decimal) -> bool:
    """Add ``amount`` to the job's ``budget_reserved`` if it stays within the job's cap (one guarded update)."""
    within = Q(budget_cap__isnull=True) | Q(budget_cap__gte=_plus("budget_reserved", amount))
    return bool(Job.objects.filter(within, pk=job_id).update(budget_reserved=_plus("budget_reserved", amount)))


def add_to_month_reserved(months: QuerySet[MonthlyBudget], amount: Decimal) -> bool:
    """Add ``amount`` to the month row's ``reserved`` if it stays within its cap (one guarded update)."""
    return bool(months.filter(cap__gte=_plus("reserved", amount)).update(reserved=_plus("reserved", amount)))


def reserved_event(*, actor: Actor, job_id: int, amount: Decimal, key: str, month: date, reason: str) -> QueuedEvent:
    """The ``budget.reserved`` audit event of one reservation."""
    return QueuedEvent(
        actor=actor,
        action="budget.reserved",
        object_type="job_budget",
        object_id=job_id,
        after={"amount": str(amount), "key": key, "month": month.isoformat()},
        reason=reason,
    )


def reserve_budget(
    *, job: Job, amount: Decimal, key: str, actor: Actor, reason: str = "", now: datetime | None = None
) -> tuple[BudgetReservation, bool]:
    """Reserve ``amount`` against the job's cap and this month's cap, or raise ``BudgetExceeded``.

    Returns ``(reservation, created)``; a key reserved before for the same job and amount returns its row
    and reserves nothing; for another job or amount it raises ``ReservationConflict``.
    """
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
        raise ServiceError("A reservation must be a non-negative Decimal amount.")
    now = now or timezone.now()
    month = month_of(now)
    with transaction.atomic():
        try:
            with transaction.atomic():
                row = BudgetReservation.objects.create(
                    job_id=job.pk, amount=amount, key=key, reason=reason, month=month, created_at=now
                )
        except IntegrityError:
            existing = BudgetReservation.objects.filter(key=key).first()
            if existing is None:
                raise
            conflict = reservation_conflict(
                key=key, held=(existing.job_id, existing.amount), job_id=job.pk, amount=amount
            )
            if conflict is not None:
                raise conflict from None
            return existing, False
        if not add_to_job_reserved(job.pk, amount):
            current = Job.objects.values("budget_cap", "budget_reserved", "currency").get(pk=job.pk)
            raise BudgetExceeded(
                job_cap_message(
                    job,
                    amount=amount,
                    cap=current["budget_cap"] or ZERO,
                    reserved=current["budget_reserved"],
                    currency=current["currency"],
                )
            )
        # Lock order everywhere: a caller's Hit rows (in id order), then the job row, then the audit chain
        # head, then the month row (no deadlocks): a caller locks the Hits it changes before reserving.
        record_audit_events(
            [reserved_event(actor=actor, job_id=job.pk, amount=amount, key=key, month=month, reason=reason)]
        )
        capped = MonthlyBudget.objects.filter(month=month, currency=job.currency)  # the job's own currency's cap
        if capped.exists() and not add_to_month_reserved(capped, amount):
            raise BudgetExceeded(month_cap_message(capped.get(), amount))
    return row, True


def release_budget(
    *, job: Job, amount: Decimal, key: str, actor: Actor, reason: str = "", now: datetime | None = None
) -> Decimal:
    """Give back up to ``amount`` of the job's reservation (never below zero). Idempotent on ``key``;
    returns how much the release under ``key`` gave back (every month's row of it; 0 when nothing was
    reserved). The amount goes back to the month(s) it was reserved in (see ``release_reservations``)."""
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0:
        raise ServiceError("A release must be a non-negative Decimal amount.")
    with transaction.atomic():
        # a release under ``key`` already made: its row, and its further months' rows (``key@YYYY-MM``)
        rows = list(BudgetReservation.objects.filter(Q(key=key) | Q(key__startswith=f"{key}@")))
        if not rows:
            rows = release_reservations(
                job=job, wanted=[(key, amount)], actor=actor, reason=reason, now=now or timezone.now()
            )
    return exact(-sum((row.amount for row in rows), ZERO))


def release_reservations(
    *,
    job: Job,
    wanted: list[tuple[str, Decimal]],
    actor: Actor,
    reason: str,
    now: datetime,
    followed_by: Mapping[str, Sequence[QueuedEvent]] | None = None,
) -> list[BudgetReservation]:
    """Give back ``(key, amount)`` releases of the job's reservation in order, each at most what is still
    reserved, skipping keys already released: the rows in bulk, one audit event each (then a caller's events
    of that key, ``followed_by``, released or not), under one lock of the job row. Each amount is given back to
    the month(s) it was reserved in, oldest first (``_months_held``): a release that spans months writes its row
    under ``key`` for the first month and one more row per further month, keyed ``key@YYYY-MM``."""
    reserved, currency = Job.objects.select_for_update().values_list("budget_reserved", "currency").get(pk=job.pk)
    done = set(BudgetReservation.objects.filter(key__in=[key for key, _ in wanted]).values_list("key", flat=True))
    held = _months_held(job, now=now)
    rows: list[BudgetReservation] = []
    events: list[QueuedEvent] = []
    left = reserved
    for key, amount in dict(wanted).items():
        amount = min(amount, left)
        if key not in done and amount > 0:
            left -= amount
            for n, (month, part) in enumerate(_take(held, amount)):
                key_n = key if n == 0 else f"{key}@{month:%Y-%m}"
                rows.append(
                    BudgetReservation(
                        job_id=job.pk, amount=-part, key=key_n, reason=reason, month=month, created_at=now
                    )
                )
                events.append(
                    QueuedEvent(
                        actor=actor,
                        action="budget.released",
                        object_type="job_budget",
                        object_id=job.pk,
                        after={"amount": str(part), "key": key_n, "month": month.isoformat()},
                        reason=reason,
                    )
                )
        events += (followed_by or {}).get(key, ())
    if rows:
        BudgetReservation.objects.bulk_create(rows)
        Job.objects.filter(pk=job.pk).update(budget_reserved=_plus("budget_reserved", -(reserved - left)))
    record_audit_events(events)
    by_month: dict[date, Decimal] = {}
    for row in rows:
        by_month[row.month] = by_month.get(row.month, ZERO) - row.amount
    for month, total in sorted(by_month.items()):  # the month rows last (the lock order)
        MonthlyBudget.objects.filter(month=month, currency=currency).update(
            reserved=Greatest(_plus("reserved", -total), ZERO)
        )
    return rows


@dataclass
class _Held:
    """What a job still holds in one month; ``amount`` None: the month that takes any rest."""

    month: date
    amount: Decimal | None


def _months_held(job: Job, *, now: datetime) -> list[_Held]:
    """What the job still holds in each month, oldest first, from the sum of its reservation and release
    rows per month (one grouped query). A month whose rows sum below zero (releases written before they
    were credited to their own month) holds nothing. A last, open-ended entry takes any rest the rows do not
    account for: the month of the job's latest reservation (or now's), as releases did before."""
    sums = (
        BudgetReservation.objects.filter(job_id=job.pk)
        .values("month")
        .annotate(total=Sum("amount"), last=Max("id", filter=Q(amount__gt=0)))
        .order_by("month")
    )
    held: list[_Held] = []
    latest: tuple[int, date] | None = None
    for row in sums:
        held.append(_Held(month=row["month"], amount=max(exact(row["total"]), ZERO)))
        if row["last"] is not None and (latest is None or row["last"] > latest[0]):
            latest = (row["last"], row["month"])
    held.append(_Held(month=latest[1] if latest is not None else month_of(now), amount=None))
    return held


def _take(held: list[_Held], amount: Decimal) -> list[tuple[date, Decimal]]:
    """Take ``amount`` from ``held``, oldest month first, lowering ``held`` by what is taken; returns
    ``(month, part)`` for each month touched, once per month."""
    parts: dict[date, Decimal] = {}
    for entry in held:
        if amount <= 0:
            break
        part = amount if entry.amount is None else min(amount, entry.amount)
        if part <= 0:
            continue
        if entry.amount is not None:
            entry.amount -= part
        parts[entry.month] = parts.get(entry.month, ZERO) + part
        amount -= part
    return list(parts.items())


def settle_job_budget(*, job: Job, actor: Actor, reason: str) -> Decimal:
    """Release what the job reserved beyond what it spent and what its submitted, unreviewed work may
    still cost (once its work is done or cancelled); returns how much was given back."""
    from tasks.reports.estimate import unit_cost

    with transaction.atomic():
        reserved = Job.objects.select_for_update().values_list("budget_reserved", flat=True).get(pk=job.pk)
        pending = Assignment.objects.filter(job_id=job.pk, state=AssignmentState.SUBMITTED).count()
        unspent = reserved - job_spent(job) - pending * unit_cost(job) - _pending_bonuses(job)
        if unspent <= 0:
            return ZERO
        rows = BudgetReservation.objects.filter(job_id=job.pk).count()
        return release_budget(job=job, amount=unspent, key=f"job:{job.pk}:settle:{rows}", actor=actor, reason=reason)


def _pending_bonuses(job: Job) -> Decimal:
    """What the job's MTurk bonuses still waiting for MTurk's answer will cost (reserved when their intent
    was recorded; a settle must leave that in place)."""
    from tasks.models import MTurkBonus, MTurkBonusState
    from workforce.marketplaces.mturk_fees import bonus_fee

    amounts = MTurkBonus.objects.filter(job_id=job.pk, state=MTurkBonusState.PENDING).values_list("amount", flat=True)
    return sum((amount + bonus_fee(amount) for amount in amounts), ZERO)


def true_up_reservation(*, job: Job, actor: Actor) -> BudgetReservation | None:
    """Raise the job's reservation to what it has spent, within its cap, when spend outran it (gold
    overhead is reserved from the job's gold rate, and the gold policy can hand out more)."""
    with transaction.atomic():
        row = Job.objects.select_for_update().values("budget_reserved", "budget_cap").get(pk=job.pk)
        missing = job_spent(job) - row["budget_reserved"]
        if row["budget_cap"] is not None:
            missing = min(missing, row["budget_cap"] - row["budget_reserved"])
        if missing <= 0:
            return None
        rows = BudgetReservation.objects.filter(job_id=job.pk).count()
        reservation, _ = reserve_budget(
            job=job, amount=missing, key=f"job:{job.pk}:true-up:{rows}", actor=actor, reason="spend above reservation"
        )
        return reservation


def true_up_spent(*, job: Job, actor: Actor) -> str:
    """``true_up_reservation`` for money a marketplace has taken already: a cap that refuses the top-up does
    not undo the spend (the caller's booking stands). Returns the refusal's sentence, empty when none."""
    try:
        with transaction.atomic():
            true_up_reservation(job=job, actor=actor)
    except BudgetExceeded as exc:
        logger.warning("job %s spent above its reservation: %s", job.pk, exc)
        return str(exc)
    return ""


def release_rejected_work(*, assignment: Assignment, actor: Actor, now: datetime | None = None) -> None:
    """Give back the reservation of one rejected assignment (its unit cost; idempotent per assignment)."""
    release_rejected_assignments(job=assignment.job, assignment_ids=[assignment.pk], actor=actor, now=now)


def release_rejected_assignments(
    *, job: Job, assignment_ids: list[int], actor: Actor, now: datetime | None = None
) -> Decimal:
    """Give back the reservation of rejected assignments of ``job``: each one's unit cost, as far as the
    reservation goes, one release row (idempotent on the assignment) and one audit event per assignment,
    written in bulk under one lock of the job row. Returns the amount released."""
    from tasks.reports.estimate import unit_cost

    unit = unit_cost(job)
    with transaction.atomic():
        rows = release_reservations(
            job=job,
            wanted=[(f"assignment:{pk}:release", unit) for pk in assignment_ids],
            actor=actor,
            reason="assignment rejected",
            now=now or timezone.now(),
        )
    return -sum((row.amount for row in rows), ZERO)


def after_review(*, job: Job, actor: Actor, now: datetime | None = None) -> None:
    """The budget's side of a review, in the review's transaction: true the reservation up to the spend,
    raise the alerts it reached, and settle the job once it is done and nothing waits for review. Locks the
    job row, so call it before the review's own audit event (the lock order: job row, then audit head)."""
    now = now or timezone.now()
    true_up_reservation(job=job, actor=actor)
    check_budget_alerts(job=job, actor=actor, now=now)
    done = Job.objects.filter(pk=job.pk, state__in=[JobState.COMPLETED, JobState.CANCELLED]).exists()
    if done and not Assignment.objects.filter(job_id=job.pk, state=AssignmentState.SUBMITTED).exists():
        settle_job_budget(job=job, actor=actor, reason="job done; all work reviewed")


def check_budget_alerts(*, job: Job, actor: Actor, now: datetime | None = None) -> list[BudgetAlert]:
    """Raise each 50/80/100% alert the job's spend has reached, once: a row, an audit event, and an
    email to ``FINANCE_ALERT_EMAILS`` when that setting lists addresses."""
    cap = Job.objects.values_list("budget_cap", flat=True).get(pk=job.pk)
    if not cap:
        return []
    now = now or timezone.now()
    spent = job_spent(job)
    done = set(BudgetAlert.objects.filter(job_id=job.pk).values_list("threshold", flat=True))
    raised: list[BudgetAlert] = []
    for threshold in alerts_reached(spent=spent, cap=cap, done=done):
        try:
            with transaction.atomic():
                alert = BudgetAlert.objects.create(
                    job_id=job.pk, threshold=threshold, spent=spent, cap=cap, created_at=now
                )
        except IntegrityError:
            continue  # raised by a concurrent approval
        record_audit_events([alert_event(actor=actor, job_id=job.pk, threshold=threshold, spent=spent, cap=cap)])
        raised.append(alert)
    mail_alerts(job=job, thresholds=[a.threshold for a in raised], spent=spent, cap=cap)
    return raised


def alerts_reached(*, spent: Decimal, cap: Decimal, done: Collection[int]) -> list[int]:
    """The alert thresholds (% of the cap) that ``spent`` has reached and that were not raised before."""
    return [t for t in ALERT_THRESHOLDS if spent * 100 >= cap * t and t not in done]


def alert_event(*, actor: Actor, job_id: int, threshold: int, spent: Decimal, cap: Decimal) -> QueuedEvent:
    """The ``budget.alert`` audit event of one raised threshold."""
    return QueuedEvent(
        actor=actor,
        action="budget.alert",
        object_type="job_budget",
        object_id=job_id,
        after={"threshold": threshold, "spent": str(spent), "cap": str(cap)},
    )


def mail_alerts(*, job: Job, thresholds: list[int], spent: Decimal, cap: Decimal) -> None:
    """On commit, one email to ``FINANCE_ALERT_EMAILS`` (if any) naming the highest threshold just raised."""
    recipients = list(getattr(settings, "FINANCE_ALERT_EMAILS", []) or [])
    if thresholds and recipients:
        subject = f"Job {job.pk} ({job.name}) has spent {max(thresholds)}% of its budget"
        body = f"Spent {format_amount(spent)} of {format_amount(cap)} {job.currency}."
        transaction.on_commit(lambda: send_alert_mail(subject, body, recipients))


def send_alert_mail(subject: str, body: str, recipients: list[str]) -> None:
    try:
        send_mail(subject, body, None, recipients)
    except OSError:  # a mail server being down must not fail the approval that crossed the line
        logger.exception("Could not send the budget alert email %r", subject)


def set_monthly_cap(*, month: date, cap: Decimal, actor: Actor, currency: str = "USD") -> MonthlyBudget:
    """Set (or create) the cap for all jobs in ``currency`` in ``month``; it cannot go below what is already
    reserved."""
    if not isinstance(cap, Decimal) or not cap.is_finite() or cap < 0:
        raise ServiceError("A monthly cap must be a non-negative Decimal amount.")
    month = month.replace(day=1)
    with transaction.atomic():
        before = MonthlyBudget.objects.filter(month=month, currency=currency).values_list("cap", flat=True).first()
        record_audit_event(  # the audit head before the month row: the lock order reservations use
            actor=actor,
            action="budget.monthly_cap_set",
            object_type="monthly_budget",
            object_id=f"{month.isoformat()}:{currency}",  # one cap per month and currency
            before={"cap": str(before) if before is not None else None, "currency": currency},
            after={"cap": str(cap), "currency": currency},
        )
        row, _ = MonthlyBudget.objects.select_for_update().get_or_create(
            month=month, currency=currency, defaults={"cap": cap}
        )
        if cap < row.reserved:
            raise ServiceError(
                f"{month:%Y-%m} already has {format_amount(row.reserved)} {row.currency} reserved; "
                "the cap cannot be lower."
            )
        MonthlyBudget.objects.filter(pk=row.pk).update(cap=cap)
        row.refresh_from_db()
    return row
