"""Asking for more answers on a whole job (the admin's "extend" actions), within the job's budget.

The Hits are chosen here; the worst-case cost is reserved before anything changes:
- internal pool: through :func:`tasks.services.extra_answers.request_more_answers` (one reservation for
  the whole request, keyed on the Hits' state, so a retry reserves once), in one transaction that locks
  the chosen Hits and then the job's row (the lock order every path takes) and checks the job's state;
- MTurk: Hit by Hit, a reservation and then CreateAdditionalAssignmentsForHIT
  (:func:`tasks.services.mturk_hits.extend_mturk_hit`, which commits the cost to the ledger); a HIT
  MTurk refuses (or that would cross MTurk's 10-assignment line) is skipped and counted;
- Ground Truth labeling jobs have a fixed number of workers per object and are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tasks.models import ConsensusLabel, Hit, HitItem, HitState, Job
from tasks.services import extra_answers
from tasks.services.errors import ServiceError
from workforce.audit import Actor
from workforce.models import Marketplace

if TYPE_CHECKING:
    from workforce.marketplaces.mturk import MTurkMarketplace

MAX_ASSIGNMENTS = 50  # the job form's ceiling on redundancy


@dataclass(frozen=True)
class MoreAnswers:
    """What a request changed: Hits given more answers, and MTurk HITs skipped (refused or over budget)."""

    hits: int
    skipped: int = 0

    def __str__(self) -> str:
        return str(self.hits) if not self.skipped else f"{self.hits} ({self.skipped} skipped)"


def _chosen_hits(job: Job, *, extra: int, below_confidence: float | None) -> list[int]:
    hits = Hit.objects.filter(
        job=job,
        is_gold=False,
        state__in=[HitState.OPEN, HitState.FULL, HitState.COMPLETE],
        assignments_wanted__lte=MAX_ASSIGNMENTS - extra,
    )
    if below_confidence is not None:
        unsure = ConsensusLabel.objects.filter(job=job, confidence__lt=below_confidence).values("item_id")
        hits = hits.filter(id__in=HitItem.objects.filter(item_id__in=unsure).values("hit_id"))
    return list(hits.order_by("pk").values_list("pk", flat=True))


def request_more_answers(
    *,
    job: Job,
    actor: Actor,
    extra: int = 1,
    below_confidence: float | None = None,
    connector: MTurkMarketplace | None = None,
    request_key: str | None = None,
) -> MoreAnswers:
    """Want ``extra`` more answers on each of the job's Hits (only Hits holding an item whose consensus is
    below ``below_confidence``, when given), after reserving their worst-case cost. A completed job is
    published again. Raises ``BudgetExceeded`` (nothing changed) when the internal pool's request would
    pass a cap; on MTurk the Hits the budget still covers are extended and the rest are skipped.
    ``request_key`` names the request (the admin form's nonce): sent again, it changes nothing."""
    if not 1 <= extra <= 10:
        raise ServiceError("Ask for between 1 and 10 more answers at a time.")
    if below_confidence is not None and not 0 < below_confidence <= 1:
        raise ServiceError("The confidence bar must be above 0 and at most 1.")
    if job.marketplace == Marketplace.GROUNDTRUTH:
        raise ServiceError(
            "Ground Truth labeling jobs have a fixed number of workers per object; publish a new batch instead."
        )
    # Read, not locked: the job's row is locked after its Hits (the lock order every path takes), by
    # ``extra_answers.request_more_answers`` or, on MTurk, by each HIT's reservation, and each checks the job's
    # state again under that lock (a cancel committed meanwhile wins). Locking it here, before the Hits,
    # deadlocked with a submit or an allocation pass holding one of the Hits and waiting for the job.
    current = Job.objects.get(pk=job.pk)
    if current.state not in extra_answers.TAKES_MORE_ANSWERS:
        raise ServiceError(f"Job {job.pk} is {current.state}; more answers can be asked of running or completed jobs.")
    hit_ids = _chosen_hits(current, extra=extra, below_confidence=below_confidence)
    if not hit_ids:
        return MoreAnswers(hits=0)
    if current.marketplace != Marketplace.MTURK:
        changed = extra_answers.request_more_answers(
            job=current, hit_ids=hit_ids, extra=extra, actor=actor, request_key=request_key
        )
        return MoreAnswers(hits=changed)
    return _extend_on_mturk(current, hit_ids, extra=extra, actor=actor, connector=connector, request_key=request_key)


def _extend_on_mturk(
    job: Job,
    hit_ids: list[int],
    *,
    extra: int,
    actor: Actor,
    connector: MTurkMarketplace | None,
    request_key: str | None = None,
) -> MoreAnswers:
    from tasks.services.mturk_hits import extend_mturk_hits_within_budget

    done = extend_mturk_hits_within_budget(
        job=job,
        hits=Hit.objects.filter(pk__in=hit_ids).order_by("pk"),
        extra=extra,
        actor=actor,
        key="more",
        reason="more answers",
        connector=connector,
        request_key=request_key,
    )
    skipped = len(hit_ids) - done.extended - done.already
    if not (done.extended or skipped):  # the same request again: nothing happened
        return MoreAnswers(hits=0)
    extra_answers.reopen_after_more_work(
        job_id=job.pk,
        actor=actor,
        action="job.more_answers_requested",
        after={"extra": extra, "hits": done.extended, "skipped": skipped, "marketplace": "mturk"},
        reopen=bool(done.extended),
    )
    return MoreAnswers(hits=done.extended, skipped=skipped)
