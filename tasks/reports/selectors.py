"""Cost reports, aggregated in the database: per job, worker, marketplace, day and month; spend
against budget; a forecast to completion; fair pay per worker.

Every figure is one grouped query over ``CostEntry`` (plus counts of approved assignments and
consensus labels); sums come back as exact ``Decimal`` (see ``tasks.services.budget.exact``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from django.db.models import Count, DateTimeField, DurationField, ExpressionWrapper, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Greatest, Least, TruncDay, TruncMonth
from django.utils import timezone

from tasks.models import (
    Assignment,
    AssignmentState,
    ConsensusLabel,
    CostEntry,
    CostKind,
    CostStatus,
    Job,
    JobCostTally,
)
from tasks.reports.estimate import unit_cost
from tasks.selectors import get_job_totals
from tasks.services.budget import exact
from workforce.models import Worker

if TYPE_CHECKING:
    from tasks.reports.period import Period

CENT = Decimal("0.01")
ZERO = Decimal("0")
GROUPINGS = ("worker", "marketplace", "day", "month", "kind")
# A worker's pay for one assignment (one row per paid assignment), and everything an assignment costs itself.
PAY_KINDS = (CostKind.INTERNAL_PAY, CostKind.REWARD, CostKind.WORKFORCE_PRICE)
ASSIGNMENT_CHARGE_KINDS = (*PAY_KINDS, CostKind.MARKETPLACE_FEE)
# What a worker is paid (hourly pay, fair pay): pay and bonuses, net of their reversals.
WORKER_PAY_KINDS = (CostKind.INTERNAL_PAY, CostKind.REWARD, CostKind.BONUS)


def per_label(total: Decimal, labels: int) -> Decimal | None:
    return (total / labels).quantize(CENT, ROUND_HALF_UP) if labels else None


@dataclass(frozen=True)
class Forecast:
    remaining_assignments: int
    cost_per_assignment: Decimal | None
    projected_total: Decimal
    assignments_per_day: float | None
    days_to_completion: float | None
    # MTurk's escrow for slots not yet settled or released: in the total already, returned if never taken.
    committed_escrow: Decimal = ZERO


@dataclass(frozen=True)
class CostReport:
    job: int
    name: str
    currency: str
    total: Decimal
    committed: Decimal
    charged: Decimal
    by_kind: dict[str, Decimal]
    approved_assignments: int
    labels: int
    cost_per_label: Decimal | None
    budget_cap: Decimal | None
    budget_reserved: Decimal
    budget_used_percent: Decimal | None
    forecast: Forecast
    rows: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """Money as decimal strings, never floats."""
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def get_cost_report(job: Job, *, by: str | None = None, now: datetime | None = None) -> CostReport:
    """The job's costs: totals by kind and status, approved work, labels, budget and forecast."""
    # The ledger's totals from the job's cost tallies (a few rows kept by a trigger on the ledger, not a pass
    # over its ledger rows), one index-only count of its assignments by state.
    sums = list(
        JobCostTally.objects.filter(job_id=job.pk).values("kind", "status").annotate(total=Sum("amount")).order_by()
    )
    by_kind: dict[str, Decimal] = {}
    by_status: dict[str, Decimal] = {}
    for row in sums:
        amount = exact(row["total"])
        by_kind[row["kind"]] = by_kind.get(row["kind"], ZERO) + amount
        by_status[row["status"]] = by_status.get(row["status"], ZERO) + amount
    total = sum(by_kind.values(), ZERO)
    states = {
        row["state"]: row["n"]
        # COUNT(*), not COUNT(id): read from the (job, state) index alone.
        for row in Assignment.objects.filter(job_id=job.pk).values("state").annotate(n=Count("*")).order_by()
    }
    approved = states.get(AssignmentState.APPROVED, 0)
    done = approved + states.get(AssignmentState.SUBMITTED, 0) + states.get(AssignmentState.REJECTED, 0)
    labels = ConsensusLabel.objects.filter(job_id=job.pk).count()
    cap = job.budget_cap
    return CostReport(
        job=job.pk,
        name=job.name,
        currency=job.currency,
        total=total,
        committed=by_status.get(CostStatus.COMMITTED, ZERO),
        charged=by_status.get(CostStatus.CHARGED, ZERO),
        by_kind=dict(sorted(by_kind.items())),
        approved_assignments=approved,
        labels=labels,
        cost_per_label=per_label(total, labels),
        budget_cap=cap,
        budget_reserved=job.budget_reserved,
        budget_used_percent=(total * 100 / cap).quantize(Decimal("0.1")) if cap else None,
        forecast=get_forecast(job, total=total, done=done, now=now),
        rows=list_cost_breakdown(job, by=by) if by else [],
    )


def _assignment_charge(prefix: str = "") -> Q:
    """A row of what an assignment itself costs: its pay (reward, internal pay, Ground Truth workforce
    price) or fee, booked against the assignment; not a bonus or a bonus's fee (``bonus:<key>...``)."""
    return Q(**{f"{prefix}assignment__isnull": False, f"{prefix}kind__in": ASSIGNMENT_CHARGE_KINDS}) & ~Q(
        **{f"{prefix}idempotency_key__startswith": "bonus:"}
    )


def _escrow_slot(prefix: str = "") -> Q:
    """A row of MTurk's escrow: committed for a HIT's slot before any worker took it (no assignment)."""
    return Q(**{f"{prefix}assignment__isnull": True, f"{prefix}hit__isnull": False}) & Q(
        **{f"{prefix}kind__in": (CostKind.REWARD, CostKind.MARKETPLACE_FEE)}
    )


@dataclass(frozen=True)
class ObservedCost:
    """What the job's ledger says its work cost so far, for the forecast (``get_observed_cost``)."""

    charged: Decimal = ZERO  # what assignments were charged themselves, net of reversals
    paid: int = 0  # assignments with a pay row
    escrow: Decimal = ZERO  # MTurk's escrow for slots not yet settled or released
    open_slots: int = 0  # escrow slots still held (their reward rows not reversed)


def get_observed_cost(job: Job) -> ObservedCost:
    """The figures the forecast's rule reads from the job's ledger rows (the job's cost tallies sum by kind,
    status and marketplace only, so they cannot tell an assignment's fee from a bonus's, or what a reversal
    reverses). Two grouped queries through the (job, kind) index: the job's rows, joined to nothing, and its
    reversals, each joined to the row it reverses by primary key."""
    rows = CostEntry.objects.filter(job_id=job.pk).aggregate(
        charged=Sum("amount", filter=_assignment_charge()),
        paid=Count("assignment_id", distinct=True, filter=Q(kind__in=PAY_KINDS, assignment__isnull=False)),
        escrow=Sum("amount", filter=_escrow_slot()),
        slots=Count("id", filter=_escrow_slot() & Q(kind=CostKind.REWARD)),
    )
    reversals = CostEntry.objects.filter(job_id=job.pk, kind=CostKind.REVERSAL).aggregate(
        charged=Sum("amount", filter=_assignment_charge("reverses__")),
        escrow=Sum("amount", filter=_escrow_slot("reverses__")),
        # A row is reversed at most once (``reverses`` is one-to-one), so this counts the slots released.
        released=Count("id", filter=_escrow_slot("reverses__") & Q(reverses__kind=CostKind.REWARD)),
    )
    return ObservedCost(
        charged=exact(rows["charged"]) + exact(reversals["charged"]),
        paid=rows["paid"],
        escrow=exact(rows["escrow"]) + exact(reversals["escrow"]),
        open_slots=rows["slots"] - reversals["released"],
    )


@dataclass(frozen=True)
class Projection:
    cost_per_assignment: Decimal | None  # None before any assignment was paid
    projected_total: Decimal


def project_total(job: Job, *, total: Decimal, remaining: int, observed: ObservedCost) -> Projection:
    """The cost at completion: the ledger's ``total`` so far plus the ``remaining`` answers at the observed cost
    of a paid assignment (the job's worst case, ``unit_cost``, before any was paid), less the remaining answers
    whose slots MTurk already holds in escrow (that escrow is in the total). The one rule behind the job
    report's forecast and the job page's."""
    paid = observed.paid
    each = (observed.charged / paid).quantize(Decimal("0.0001"), ROUND_HALF_UP) if paid else unit_cost(job)
    unescrowed = max(remaining - observed.open_slots, 0)
    return Projection(cost_per_assignment=each if paid else None, projected_total=total + each * unescrowed)


def get_forecast(job: Job, *, total: Decimal, done: int, now: datetime | None = None) -> Forecast:
    """Remaining answers x the observed cost of a paid assignment (the worst case before any), and days to
    completion at the rate work was done since the job was published.

    The observed cost is what assignments were charged themselves (pay and fee rows booked against an
    assignment, net of their reversals) over the assignments paid: bonuses and MTurk's escrow are not
    part of it. Remaining answers whose slots MTurk already holds in escrow add nothing: that escrow is
    in the total (``project_total``). Two grouped queries over the job's ledger rows (``get_observed_cost``)."""
    now = now or timezone.now()
    totals = get_job_totals(job)  # the job's tally of its live (not cancelled) non-gold Hits
    remaining = max(totals.answers_wanted - totals.answers_submitted, 0)
    observed = get_observed_cost(job)
    projection = project_total(job, total=total, remaining=remaining, observed=observed)
    rate = None
    if job.published_at is not None and done:
        days = max((now - job.published_at).total_seconds() / 86400, 1 / 24)
        rate = round(done / days, 2)
    return Forecast(
        remaining_assignments=remaining,
        cost_per_assignment=projection.cost_per_assignment,
        projected_total=projection.projected_total,
        assignments_per_day=rate,
        days_to_completion=round(remaining / rate, 2) if rate else None,
        committed_escrow=observed.escrow,
    )


def _grouped(entries: QuerySet[CostEntry], by: str) -> QuerySet[Any]:
    if by == "worker":
        return entries.values(key=F("worker_id"))
    if by == "marketplace":
        return entries.values(key=F("marketplace"))
    if by == "kind":
        return entries.values(key=F("kind"))
    if by == "day":
        return entries.annotate(key=TruncDay("created_at")).values("key")
    if by == "month":
        return entries.annotate(key=TruncMonth("created_at")).values("key")
    raise ValueError(f"Unknown grouping {by!r}; use one of {', '.join(GROUPINGS)}.")


def list_cost_breakdown(job: Job | None, *, by: str, period: Period | None = None) -> list[dict[str, Any]]:
    """One row per worker, marketplace, kind, day or month: total, ledger entries, and assignments paid
    (the assignments with a pay row: one per approved assignment; MTurk's escrow for a HIT's slots has no
    assignment and is not one). Grouped on the ledger table alone; worker names are read afterwards for
    the groups only. ``period``: only the rows booked in it."""
    entries = CostEntry.objects.all() if job is None else CostEntry.objects.filter(job_id=job.pk)
    if period:
        entries = period.entries(entries)
    rows = list(
        _grouped(entries, by)
        .annotate(
            total=Sum("amount"),
            entries=Count("id"),
            assignments=Count("assignment_id", distinct=True, filter=Q(kind__in=PAY_KINDS, assignment__isnull=False)),
        )
        .order_by("key")
    )
    names: dict[int, tuple[str, str]] = {}
    if by == "worker":
        ids = [row["key"] for row in rows if row["key"] is not None]
        names = {
            pk: (ext, shown)
            for pk, ext, shown in Worker.objects.filter(pk__in=ids).values_list("pk", "external_id", "display_name")
        }
    out = []
    for row in rows:
        key = row["key"]
        if isinstance(key, datetime):
            key = key.date()
        if by == "worker":
            external_id, shown = names.get(key, ("", ""))
            head: dict[str, Any] = {"worker": external_id, "worker_id": key, "worker_name": shown}
        else:
            head = {by: key}
        out.append({**head, "total": exact(row["total"]), "entries": row["entries"], "assignments": row["assignments"]})
    return out


@dataclass(frozen=True)
class JobCost:
    job: int
    name: str
    currency: str
    total: Decimal
    labels: int
    cost_per_label: Decimal | None
    budget_cap: Decimal | None
    budget_reserved: Decimal


JOB_COST_FIELDS = ("id", "name", "currency", "budget_cap", "budget_reserved")


def list_job_costs(*, limit: int = 50, period: Period | None = None) -> list[JobCost]:
    """The most recent jobs with their spend, labels and cost per label, in three grouped queries: the spend
    from the jobs' cost tallies (a few rows each, not their ledger rows), or with ``period`` the most recent
    jobs with ledger rows in it and what they spent in it (one grouped query over the period's rows, through
    the ``created_at`` index). Labels are not dated like money, so a period's jobs have no cost per label."""
    if period is None:
        jobs = list(Job.objects.order_by("-id").values(*JOB_COST_FIELDS)[:limit])
        ids = [j["id"] for j in jobs]
        spend = {
            r["job_id"]: exact(r["total"])
            for r in JobCostTally.objects.filter(job_id__in=ids)
            .values("job_id")
            .annotate(total=Sum("amount"))
            .order_by()
        }
    else:
        spend = {
            r["job_id"]: exact(r["total"])
            for r in period.entries(CostEntry.objects.all())
            .values("job_id")
            .annotate(total=Sum("amount"))
            .order_by("-job_id")[:limit]
        }
        ids = list(spend)
        jobs = list(Job.objects.filter(pk__in=ids).order_by("-id").values(*JOB_COST_FIELDS))
    labels = {
        r["job_id"]: r["n"]
        for r in ConsensusLabel.objects.filter(job_id__in=ids).values("job_id").annotate(n=Count("id")).order_by()
    }
    return [
        JobCost(
            job=j["id"],
            name=j["name"],
            currency=j["currency"],
            total=spend.get(j["id"], ZERO),
            labels=labels.get(j["id"], 0),
            cost_per_label=per_label(spend.get(j["id"], ZERO), labels.get(j["id"], 0)) if period is None else None,
            budget_cap=j["budget_cap"],
            budget_reserved=j["budget_reserved"],
        )
        for j in jobs
    ]


@dataclass(frozen=True)
class MarketplaceSpend:
    marketplace: str
    currency: str
    total: Decimal
    jobs: int


def list_spend_by_marketplace() -> list[MarketplaceSpend]:
    """Every job's spend added up per marketplace and currency (one grouped read of the cost tallies).

    A job's ledger rows are all in the job's currency: it cannot change once the job has left draft, and
    MTurk and Ground Truth jobs, whose marketplaces book in US dollars, must be USD
    (``tasks.services.jobs.check_marketplace_currency``)."""
    rows = (
        JobCostTally.objects.values("marketplace", "job__currency")
        .annotate(total=Sum("amount"), jobs=Count("job_id", distinct=True))
        .order_by("marketplace", "job__currency")
    )
    return [
        MarketplaceSpend(
            marketplace=r["marketplace"], currency=r["job__currency"], total=exact(r["total"]), jobs=r["jobs"]
        )
        for r in rows
    ]


def list_spend_over_time(
    *, job: Job | None = None, days: int = 60, now: datetime | None = None, period: Period | None = None
) -> dict[str, list[tuple[date, Decimal]]]:
    """Spend per day over the last ``days`` days, or in ``period`` when one is given (all jobs, or one),
    one series per currency the ledger rows were booked in (amounts in different currencies are never
    added together), in currency order.

    One grouped query read from the ``costentry_day_spend_idx`` index alone (day, currency, time, amount) in
    its order: the rows' days are bounded too (the days of the window's ends, which its rows' days cannot
    pass), so the index is scanned from the window's first day, not read whole."""
    now = now or timezone.now()
    start, end = (period.start, period.end) if period else (now - timedelta(days=days), None)
    entries = CostEntry.objects.annotate(day=TruncDay("created_at"))
    if start is not None:
        entries = entries.filter(created_at__gte=start, day__gte=TruncDay(Value(start, DateTimeField())))
    if end is not None:
        entries = entries.filter(created_at__lt=end, day__lte=TruncDay(Value(end, DateTimeField())))
    if job is not None:
        entries = entries.filter(job_id=job.pk)
    series: dict[str, list[tuple[date, Decimal]]] = {}
    for row in entries.values("day", "currency").annotate(total=Sum("amount")).order_by("day", "currency"):
        day = row["day"].date() if isinstance(row["day"], datetime) else row["day"]
        series.setdefault(row["currency"], []).append((day, exact(row["total"])))
    return dict(sorted(series.items()))


def get_budget_burn_down(job: Job) -> list[tuple[date, Decimal]]:
    """Budget left at the end of each day with spend (the cap minus cumulative spend in the job's currency,
    the currency of its cap)."""
    if job.budget_cap is None:
        return []
    left = job.budget_cap
    out = []
    for day, spent in list_spend_over_time(job=job, days=3660).get(job.currency, []):
        left -= spent
        out.append((day, left))
    return out


@dataclass(frozen=True)
class WorkerPay:
    worker: int
    external_id: str
    paid: Decimal
    hours: float  # for display; money is reckoned from the exact ``seconds``
    hourly: Decimal | None
    seconds: Decimal = ZERO


def list_worker_hourly_pay(job: Job) -> list[WorkerPay]:
    """Each worker's effective hourly pay on the job: ledger pay and bonuses, net of their reversals, over
    measured active time (accepted to submitted, at most the assignment duration) of their approved
    assignments."""
    from tasks.reports.estimate import seconds

    paid = {
        r["worker_id"]: exact(r["total"])
        for r in CostEntry.objects.filter(
            Q(kind__in=WORKER_PAY_KINDS) | Q(kind=CostKind.REVERSAL, reverses__kind__in=WORKER_PAY_KINDS),
            job_id=job.pk,
            worker_id__isnull=False,
        )
        .values("worker_id")
        .annotate(total=Sum("amount"))
        .order_by()
    }
    # Active time per worker, summed in the database: accepted to submitted, clipped to [0, assignment duration].
    span = ExpressionWrapper(F("submitted_at") - F("accepted_at"), output_field=DurationField())
    clipped = Least(Greatest(span, Value(timedelta(0))), Value(job.assignment_duration))
    spans: dict[int, Decimal] = {}
    names: dict[int, str] = {}
    for worker_id, external_id, active in (
        Assignment.objects.filter(job_id=job.pk, state=AssignmentState.APPROVED, submitted_at__isnull=False)
        .values("worker_id", "worker__external_id")
        .annotate(active=Sum(clipped, output_field=DurationField()))
        .values_list("worker_id", "worker__external_id", "active")
        .order_by()
    ):
        spans[worker_id] = seconds(active) if active is not None else ZERO
        names[worker_id] = external_id
    out = []
    for worker_id, secs in spans.items():
        hours = secs / 3600
        money = paid.get(worker_id, ZERO)
        out.append(
            WorkerPay(
                worker=worker_id,
                external_id=names[worker_id],
                paid=money,
                hours=float(hours),
                hourly=(money / hours).quantize(CENT, ROUND_HALF_UP) if hours else None,
                seconds=secs,
            )
        )
    return sorted(out, key=lambda w: w.worker)
