"""Topping up a job's underpaid workers to the fair-pay minimum with bonuses."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from tasks.models import Job
from tasks.reports.fair_pay import get_fair_pay
from tasks.services.bonuses_bulk import BonusRequest, pay_bonuses
from tasks.services.errors import ServiceError
from workforce.audit import Actor
from workforce.models import Worker

CENT = Decimal("0.01")


def top_up_fair_pay(*, job: Job, actor: Actor, minimum: Decimal | None = None) -> Decimal:
    """Bonus each worker whose effective hourly pay on the job is below the minimum up to it (their
    measured hours x the minimum, less what they were paid net of reversals). Returns the total of the
    bonuses paid; a repeat with no new work pays nothing (the bonus key names the amount the worker is
    brought to and the amount they had been paid)."""
    report = get_fair_pay(job, minimum=minimum)
    if report.minimum is None:
        raise ServiceError("No fair-pay minimum is configured (FAIR_PAY_MIN_HOURLY).")
    workers = Worker.objects.in_bulk([w.worker for w in report.below])
    bonuses: list[BonusRequest] = []
    for pay in report.below:
        # Exact Decimal seconds, never the float hours shown on the page.
        target = (report.minimum * pay.seconds / 3600).quantize(CENT, ROUND_HALF_UP)
        amount = target - pay.paid
        if amount <= 0:
            continue
        bonuses.append(
            BonusRequest(
                job=job,
                worker=workers[pay.worker],
                amount=amount,
                reason=f"Top-up to the minimum of {report.minimum}/hour for your work on this job.",
                # what they were paid is in the key too: after a reversal the same target is a new top-up
                key=f"fair-pay:job{job.pk}:worker{pay.worker}:to{target}:from{pay.paid.normalize():f}",
            )
        )
    # As one ``pay_bonus`` per worker in turn: internal-pool bonuses booked set-based, MTurk's one SendBonus
    # each in its own transaction (a bonus MTurk has paid is never rolled back because a later one failed); a
    # refusal is raised once the bonuses before it are committed, and the ones after it are not attempted.
    outcomes = pay_bonuses(bonuses=bonuses, actor=actor, stop_at_refusal=True)
    return sum((bonus.amount for bonus, outcome in zip(bonuses, outcomes, strict=True) if outcome.paid), Decimal(0))
