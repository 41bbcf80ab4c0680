"""Creating and configuring jobs from code (commands, API); the admin uses its ModelForm."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F

from tasks.models import Job, JobState, Prediction, TaskKind
from tasks.reports.estimate import estimate_job_cost
from tasks.selectors import get_job_totals
from tasks.services.budget import BudgetExceeded, check_budget, reserve_budget
from tasks.services.errors import ServiceError
from tasks.services.instructions import check_instructions_change, record_instructions_version
from workforce.audit import Actor, record_audit_event
from workforce.marketplaces.mturk_fees import LARGE_HIT_ASSIGNMENTS as MTURK_LARGE_HIT
from workforce.models import Marketplace


def create_job(
    *,
    name: str,
    task_kind: str,
    labels: list[str],
    actor: Actor,
    redundancy: int = 3,
    reward: Decimal = Decimal("0.05"),
    instructions: str = "",
    description: str = "",
    items_per_hit: int = 1,
    assignment_duration: timedelta = timedelta(minutes=10),
    created_by: Any = None,
) -> Job:
    if task_kind not in TaskKind.values:
        raise ServiceError(f"Unknown task kind {task_kind!r}; use one of: {', '.join(TaskKind.values)}.")
    clean = [str(label).strip() for label in labels]
    if len(clean) < 2 or len(set(clean)) != len(clean) or not all(clean):
        raise ServiceError("A job needs at least two distinct, non-empty labels.")
    if not isinstance(reward, Decimal):
        raise ServiceError("The reward must be a Decimal amount.")
    if problems := check_durations(assignment_duration=assignment_duration, auto_approve_after=None):
        raise ServiceError(" ".join(problems.values()))
    job = Job(
        name=name,
        task_kind=task_kind,
        labels=clean,
        redundancy=redundancy,
        reward=reward,
        instructions=instructions,
        description=description,
        items_per_hit=items_per_hit,
        assignment_duration=assignment_duration,
        created_by=created_by,
    )
    try:
        job.full_clean()
    except ValidationError as exc:
        raise ServiceError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
    with transaction.atomic():
        job.save()
        record_audit_event(
            actor=actor,
            action="job.created",
            object_type="job",
            object_id=job.pk,
            after={
                "name": name,
                "task_kind": task_kind,
                "labels": clean,
                "redundancy": redundancy,
                "reward": str(reward),
            },
        )
        if instructions:
            record_instructions_version(job=job, text=instructions, actor=actor, user=created_by)
    return job


INTERNAL_ONLY_REFUSAL = "An internal-only job can only use the internal worker pool, not an external marketplace."

# Fields that shape the work already handed out: editable only while the job is a draft.
STRUCTURAL_FIELDS = ("task_kind", "labels", "redundancy", "items_per_hit", "marketplace", "adaptive_min_answers")
# What the job's work costs. Once the job has left draft its currency never changes (the ledger, tallies and
# caps are in it); a remote marketplace keeps the price its HITs were posted at; on the internal pool a
# higher price first reserves the difference against the budget (``_reserve_price_change``).
POSTED_PRICE_FIELDS = ("reward", "pay_mode", "hourly_rate", "assignment_duration")
PRICE_FIELDS = (*POSTED_PRICE_FIELDS, "gold_rate", "gold_boost_rate", "gold_boost_until")
AUDITED_FIELDS = (
    "name",
    "description",
    "instructions",
    *STRUCTURAL_FIELDS,
    "reward",
    "currency",
    "assignment_duration",
    "consensus_method",
    "prelabel_model",
    "task_template",
    "answer_field",
    "pay_mode",
    "hourly_rate",
    "auto_approve_after",
    "budget_cap",
    "internal_only",
    # Quality policies (changes are saved and audited like the rest).
    "requirements",
    "training_mode",
    "gold_rate",
    "block_below_accuracy",
    "block_after_gold",
    "gold_boost_rate",
    "gold_boost_until",
    "gold_miss_action",
    "trusted_test_id",
    "trusted_min_accuracy",
    "adaptive_max_answers",
    "adaptive_target",
)


# A target at or below one half would let an item stop while another label is as likely as its own.
ADAPTIVE_TARGET_ABOVE = 0.5
# What ``check_adaptive_settings`` reads (a form builds a probe Job from these).
ADAPTIVE_FORM_FIELDS = ("task_kind", "marketplace", "adaptive_min_answers", "adaptive_max_answers", "adaptive_target")


def check_adaptive_settings(job: Job) -> dict[str, str]:
    """Problems with the job's adaptive redundancy settings, by field (empty when they are fine or off)."""
    lo, hi, target = job.adaptive_min_answers, job.adaptive_max_answers, job.adaptive_target
    if lo is None and hi is None and target is None:
        return {}
    if lo is None or hi is None or target is None:
        return {"adaptive_min_answers": "Adaptive redundancy needs a minimum, a maximum and a target (or none)."}
    problems: dict[str, str] = {}
    if hi < lo:
        problems["adaptive_max_answers"] = "The maximum number of answers must be at least the minimum."
    if not ADAPTIVE_TARGET_ABOVE < target < 1:
        problems["adaptive_target"] = (
            f"The target confidence must be above {ADAPTIVE_TARGET_ABOVE} and below 1 (no item ever reaches 1, so "
            "every item would get the maximum)."
        )
    if job.is_multilabel or job.is_shapes:
        problems["adaptive_min_answers"] = "Adaptive redundancy works on single-label classification jobs only."
    if job.marketplace == Marketplace.GROUNDTRUTH:
        problems["adaptive_min_answers"] = (
            "Ground Truth jobs keep a fixed number of workers per item; clear the adaptive settings."
        )
    elif job.marketplace == Marketplace.MTURK and lo < MTURK_LARGE_HIT <= hi:
        problems["adaptive_max_answers"] = (
            f"MTurk never lets a HIT created with fewer than {MTURK_LARGE_HIT} assignments reach "
            f"{MTURK_LARGE_HIT}: keep the maximum below {MTURK_LARGE_HIT} or the minimum at {MTURK_LARGE_HIT} or more."
        )
    return problems


# MTurk's own bounds (AssignmentDurationInSeconds, AutoApprovalDelayInSeconds), which fit the pool too.
MIN_ASSIGNMENT_DURATION = timedelta(seconds=30)
MAX_ASSIGNMENT_DURATION = timedelta(days=365)
MAX_AUTO_APPROVAL = timedelta(days=30)


def check_durations(*, assignment_duration: timedelta | None, auto_approve_after: timedelta | None) -> dict[str, str]:
    """Problems with a job's time settings, by field: a worker must have time to do the work (at least 30
    seconds, at most a year, as on MTurk), and automatic approval waits from 0 up to 30 days."""
    problems: dict[str, str] = {}
    if assignment_duration is not None and not (
        MIN_ASSIGNMENT_DURATION <= assignment_duration <= MAX_ASSIGNMENT_DURATION
    ):
        problems["assignment_duration"] = "The time to do one task must be from 30 seconds to 365 days."
    if auto_approve_after is not None and not timedelta(0) <= auto_approve_after <= MAX_AUTO_APPROVAL:
        problems["auto_approve_after"] = "Automatic approval must wait from 0 (at once) to 30 days."
    return problems


def check_budget_and_prelabels(
    *, job_id: int | None, budget_cap: Decimal | None, prelabel_model: str
) -> dict[str, str]:
    """Problems with a job's budget cap and pre-label model, by field (empty when both are fine).

    The one check behind the admin form, the API and ``configure_job``. The cap is a Decimal of at least 0
    and never below what the job has already reserved; the pre-label model must be one whose predictions
    were imported for this job (empty switches pre-labels off; a model the job already shows is kept).
    At most two indexed single-row queries.
    """
    problems: dict[str, str] = {}
    stored = (
        Job.objects.filter(pk=job_id).values("budget_reserved", "prelabel_model").first() if job_id else None
    ) or {"budget_reserved": Decimal("0"), "prelabel_model": ""}
    if budget_cap is not None:
        if not isinstance(budget_cap, Decimal) or not budget_cap.is_finite():
            problems["budget_cap"] = "The budget cap must be a decimal amount."
        elif budget_cap < 0:
            problems["budget_cap"] = "The budget cap cannot be negative."
        elif budget_cap < stored["budget_reserved"]:
            problems["budget_cap"] = (
                f"{stored['budget_reserved']} is already reserved for this job; the cap cannot be lower."
            )
    if prelabel_model and prelabel_model != stored["prelabel_model"]:
        known = job_id is not None and Prediction.objects.filter(job_id=job_id, model_name=prelabel_model).exists()
        if not known:
            problems["prelabel_model"] = (
                f"This job has no predictions of the model {prelabel_model!r}; import them first "
                "(or leave it empty to show no pre-labels)."
            )
    return problems


def _refuse(problems: dict[str, str]) -> None:
    if problems:
        raise ServiceError(" ".join(problems.values()))


def _refuse_bad_budget_or_prelabels(job: Job) -> None:
    _refuse(check_budget_and_prelabels(job_id=job.pk, budget_cap=job.budget_cap, prelabel_model=job.prelabel_model))


def check_marketplace_currency(*, marketplace: str, currency: str) -> dict[str, str]:
    """MTurk and Ground Truth charge in US dollars: a job there is priced, reserved and booked in USD."""
    if marketplace in (Marketplace.MTURK, Marketplace.GROUNDTRUTH) and currency != "USD":
        name = Marketplace(marketplace).label
        return {"currency": f"{name} charges in US dollars: a job there must use the currency USD, not {currency}."}
    return {}


def repriced(stored: Job, job: Job) -> bool:
    """A running job whose price fields change: the change must fit the budget (``price_change``)."""
    running = stored.state in (JobState.PUBLISHED, JobState.PAUSED)
    return running and any(getattr(stored, name) != getattr(job, name) for name in PRICE_FIELDS)


class PriceChange(NamedTuple):
    """What a running job's new price costs more at worst (``increase``, never negative), and how many more
    gold leases its estimate prices (``gold_leases``: a raised gold rate; the pool hands those out against
    this reservation instead of reserving each one again)."""

    increase: Decimal
    gold_leases: int


NO_PRICE_CHANGE = PriceChange(Decimal(0), 0)


def check_running_job_change(*, stored: Job, job: Job, change: PriceChange | None = None) -> dict[str, str]:
    """Field -> sentence for each change a job that has left draft cannot take: structural fields and the
    currency; the posted price on a remote marketplace; a higher price the budget (the job's cap or the
    month's) cannot cover (``change`` when the caller has computed it)."""
    if stored.state == JobState.DRAFT:
        return {}
    changed = [
        name for name in (*STRUCTURAL_FIELDS, "currency", *PRICE_FIELDS) if getattr(stored, name) != getattr(job, name)
    ]
    problems = {
        name: f"{name} cannot change once the job is {stored.state}; clone it into a new job instead."
        for name in changed
        if name in (*STRUCTURAL_FIELDS, "currency")
    }
    if stored.marketplace != Marketplace.INTERNAL:
        for name in changed:
            if name in POSTED_PRICE_FIELDS:
                problems[name] = (
                    f"{name} cannot change once the job is {stored.state}: its work is posted on "
                    f"{stored.get_marketplace_display()} at the price it was published with; clone it into a new job "
                    "instead."
                )
    if not problems and repriced(stored, job):
        increase = (price_change(stored=stored, job=job) if change is None else change).increase
        try:
            if increase > 0:
                check_budget(job=stored, amount=increase)
        except BudgetExceeded as exc:
            field = next(name for name in PRICE_FIELDS if name in changed)
            problems[field] = f"At the new price: {exc}"
    return problems


def price_change(*, stored: Job, job: Job) -> PriceChange:
    """How much more the job's worst case costs at ``job``'s price than at ``stored``'s (0 when less), and
    how many more gold leases the new estimate prices.

    Both estimates cover the whole job, so work already paid at the old price is priced again at the new
    one: the reservation errs on the safe side, and settling the job releases what was not spent.
    """
    totals = get_job_totals(stored)  # the same items at both prices: read their tally once
    old, new = estimate_job_cost(stored, totals=totals), estimate_job_cost(job, totals=totals)
    return PriceChange(max(new.total - old.total, Decimal(0)), max(new.gold_assignments - old.gold_assignments, 0))


def _reserve_price_change(*, stored: Job, change: PriceChange, actor: Actor) -> None:
    """A running job's new price costs ``change.increase`` more at worst: reserve it first, or refuse the
    change. The gold leases the new estimate adds are priced by the job's reservations from now on."""
    if change.increase > 0:
        try:
            reserve_budget(
                job=stored,
                amount=change.increase,
                key=f"job:{stored.pk}:price:{uuid.uuid4().hex}",  # one per change: the change and it commit together
                actor=actor,
                reason="the job's price was raised",
            )
        except BudgetExceeded as exc:
            raise ServiceError(f"At the new price: {exc}") from exc
    if change.gold_leases:
        Job.objects.filter(pk=stored.pk).update(gold_leases_priced=F("gold_leases_priced") + change.gold_leases)


def _snapshot(job: Job) -> dict[str, Any]:
    return {name: getattr(job, name) for name in AUDITED_FIELDS}


def configure_job(*, job: Job, actor: Actor, instructions_confirmed: bool = True, user: Any = None) -> Job:
    """Save a job edited in a form (new or existing), auditing the fields that changed.

    Structural fields (task kind, labels, redundancy, items per Hit, marketplace) cannot change once the
    job has left draft: work already handed out depends on them. Changed instructions become a new
    ``JobInstructions`` version; on a running job only with ``instructions_confirmed``.
    """
    if job.internal_only and job.marketplace != Marketplace.INTERNAL:
        raise ServiceError(INTERNAL_ONLY_REFUSAL)
    problems = check_adaptive_settings(job) | check_durations(
        assignment_duration=job.assignment_duration, auto_approve_after=job.auto_approve_after
    )
    if problems:
        raise ServiceError(" ".join(problems.values()))
    with transaction.atomic():
        if job.pk is None:
            _refuse(check_marketplace_currency(marketplace=job.marketplace, currency=job.currency))
            _refuse_bad_budget_or_prelabels(job)
            job.save()
            record_audit_event(
                actor=actor, action="job.created", object_type="job", object_id=job.pk, after=_snapshot(job)
            )
            if job.instructions:
                record_instructions_version(job=job, text=job.instructions, actor=actor, user=user)
            return job
        stored = Job.objects.select_for_update().get(pk=job.pk)
        check_instructions_change(job=stored, text=job.instructions, confirmed=instructions_confirmed)
        before, after = _snapshot(stored), _snapshot(job)
        changed = [name for name in AUDITED_FIELDS if before[name] != after[name]]
        change = price_change(stored=stored, job=job) if repriced(stored, job) else NO_PRICE_CHANGE
        _refuse(check_running_job_change(stored=stored, job=job, change=change))
        if stored.state == JobState.DRAFT:  # later the currency cannot change, so it is checked while a draft
            _refuse(check_marketplace_currency(marketplace=job.marketplace, currency=job.currency))
        if not changed:
            return job
        _refuse_bad_budget_or_prelabels(job)  # under the row lock: nothing is reserved meanwhile
        _reserve_price_change(stored=stored, change=change, actor=actor)
        job.budget_reserved = stored.budget_reserved  # kept by tasks.services.budget only
        job.state = stored.state  # the form never moves the state machine
        job.save(update_fields=[*changed, "updated_at"])
        record_audit_event(
            actor=actor,
            action="job.configured",
            object_type="job",
            object_id=job.pk,
            before={name: before[name] for name in changed},
            after={name: after[name] for name in changed},
        )
        if "instructions" in changed:
            record_instructions_version(job=job, text=job.instructions, actor=actor, user=user)
    return job
