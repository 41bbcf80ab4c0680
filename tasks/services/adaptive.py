"""Adaptive redundancy on live jobs: after a Hit completes, does it need another answer?

Only jobs with ``adaptive_min_answers`` set take part; ``submit_assignment`` checks that attribute (no
query) before calling :func:`after_hit_completed`, so other jobs pay nothing on the hot path.

- Skills (and posteriors, below) live in :mod:`tasks.services.adaptive_state`. The job's worker skills
  are a cached :class:`~tasks.models.AdaptiveSkills` snapshot, refitted in full
  (:func:`refit_adaptive_skills`, Dawid-Skene over every answer) whenever the job's answers have grown
  by ``REFIT_GROWTH`` since the last fit: queued on commit from the hot path (at most one at a time) and by
  the periodic :func:`sweep_adaptive_jobs` (Celery beat; the only trigger for MTurk jobs).
- Posteriors: the Hit's items' posteriors are rebuilt from their answers, warm-started from the snapshot
  (``ItemPosteriors.add``). A confident model prediction (``Prediction`` of ``job.prelabel_model`` with a
  score at or above the target) that agrees with an item's first answer counts as one more annotator, so
  such an item may stop at one worker answer; a Hit reopened because the model contradicts the first answer
  is handed out before any other (``DISPUTED_PRIORITY``).
- Stopping: the rule the ``replay`` command measures (``tasks.aggregation.replay``). Agreeing answers to one
  item are discounted (``DEFAULT_CONCENTRATION``), and an item below the maximum wants another answer
  until the probability that the answers still to come (up to the maximum) would change its label is at
  most ``1 - adaptive_target``; every item gets at least ``adaptive_min_answers``.
- Extra answers: a Hit wanting more gets ``assignments_wanted + 1`` by a conditional UPDATE and is
  reopened (a completed job is published again), after reserving the answer's worst-case cost. When the
  job's budget cannot pay for every answer its Hits may still want, the hot path defers to
  :func:`allocate_adaptive_answers`, which first brings every Hit to the replay's sweep depth (half of
  what the whole budget pays per Hit, ``first_depth``, whatever the Hit's answers say), then pays the
  least settled Hits first (one confidence step at a time, :func:`neediest`), ranked by
  :func:`expected_gain`;
  its passes are debounced per job (``tasks.services.adaptive_queue``). A refusal for lack of budget stops
  the asking and is audited once per job.
- Marketplaces: the internal pool and MTurk (extra assignments through ``extend_mturk_hit``, never taking a
  HIT created with fewer than 10 assignments to 10). Ground Truth jobs keep their fixed count: the form
  refuses adaptive settings for them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from functools import partial

import numpy as np
from django.db import transaction
from django.db.models import Case, F, SmallIntegerField, Value, When
from django.utils import timezone

from tasks.aggregation.adaptive import below_step, neediest_step
from tasks.aggregation.replay import first_depth
from tasks.models import (
    AdaptiveSkills,
    Hit,
    HitItem,
    HitState,
    Job,
    JobState,
)
from tasks.reports.estimate import hits_cost
from tasks.selectors import JobTotals, get_job_totals, list_job_tallies
from tasks.services.adaptive_queue import (
    flush_adaptive_allocation,
    release_adaptive_refit,
    request_adaptive_allocation,
    request_adaptive_refit,
)
from tasks.services.adaptive_state import (
    SYSTEM,
    ItemsState,
    items_state,
    load_skills,
    max_answers_of,
    policy_of,
    refit_adaptive_skills,
    refit_due,
)
from tasks.services.budget import BudgetExceeded, reserve_budget
from tasks.services.extra_answers import reopen_after_more_work
from workforce.audit import Actor, queue_audit_event
from workforce.marketplaces.mturk import MTurkMarketplace
from workforce.models import Marketplace

DISPUTED_PRIORITY = -101  # before every pre-label priority (-100 for a model score of 0): see predictions.py
ALLOCATING_STATES = (JobState.PUBLISHED, JobState.COMPLETED)  # a job whose Hits may get more answers


def refit_and_allocate(*, job_id: int, actor: Actor = SYSTEM) -> int:
    """A full re-fit of the job's worker skills, then an allocation pass with them (Hits that looked settled
    under the old skills may not be). Frees the job's re-fit claim whatever happens."""
    try:
        job = Job.objects.get(pk=job_id)
        refit_adaptive_skills(job=job, actor=actor)
    finally:
        release_adaptive_refit(job_id=job_id)
    return allocate_adaptive_answers(job=job, actor=actor)


def sweep_adaptive_jobs() -> tuple[int, int]:
    """The periodic pass over published adaptive jobs (Celery beat): queue a full re-fit of each job whose
    answers have grown enough since the last one (MTurk jobs have no other trigger), and each job's
    allocation pass held back by the debounce. Returns (re-fits queued, allocation passes queued)."""
    jobs = list(Job.objects.filter(state=JobState.PUBLISHED, adaptive_min_answers__isnull=False).order_by("pk"))
    ids = [j.pk for j in jobs]
    fitted = dict(AdaptiveSkills.objects.filter(job_id__in=ids).values_list("job_id", "submitted_at_fit"))
    totals = list_job_tallies(ids)
    refits = passes = 0
    for job in jobs:
        due = refit_due(job, fitted.get(job.pk, 0), totals[job.pk].answers_submitted)
        if due and request_adaptive_refit(job_id=job.pk):
            refits += 1
        if flush_adaptive_allocation(job_id=job.pk, force=True):
            passes += 1
    return refits, passes


# --- asking for more ------------------------------------------------------------------------------------


def after_hit_completed(*, job: Job, hit_id: int, now: datetime) -> bool:
    """The hot-path hook: called inside ``submit_assignment``'s transaction when an adaptive job's Hit has
    collected every answer it wanted. Returns True when the Hit was reopened for one more answer."""
    view = load_skills(job)
    totals = get_job_totals(job)
    if refit_due(job, view.submitted_at_fit, totals.answers_submitted):
        transaction.on_commit(partial(request_adaptive_refit, job_id=job.pk))
    item_ids = list(HitItem.objects.filter(hit_id=hit_id).values_list("item_id", flat=True))
    short = _short_budget(job, totals)
    state = items_state(job, item_ids, view, short_budget=short) if item_ids else None
    if state is None or not state.wants.any():
        if state is not None and short and _below_sweep_depth(job, totals, hit_id):
            # settled, but a short budget sweeps every Hit to the same depth first: the pass pays it
            transaction.on_commit(partial(request_adaptive_allocation, job_id=job.pk))
            return False
        # An allocation pass held back by the debounce may be due now (or this was the job's last Hit).
        transaction.on_commit(partial(flush_adaptive_allocation, job_id=job.pk))
        return False
    if job.marketplace != Marketplace.INTERNAL:
        transaction.on_commit(partial(request_adaptive_allocation, job_id=job.pk))
        return False
    if short:
        # The budget is short: let the ranked allocation choose which Hits get the answers left (when any is).
        if _affordable(job, 1):
            transaction.on_commit(partial(request_adaptive_allocation, job_id=job.pk))
        else:
            _note_budget_exhausted(job, "The budget cannot pay for another answer.", now)
        return False
    urgent = [hit_id] if state.disputed.any() else []
    return bool(_grant(job=job, hit_ids=[hit_id], actor=SYSTEM, now=now, urgent=urgent))


def _budget_covers_every_extra(job: Job, totals: JobTotals | None = None) -> bool:
    """Whether the job's budget left pays for every extra answer its Hits could still want.

    Read from the job's tallies (kept by triggers), never by summing over its Hits, since the hot path asks
    on every completed Hit: the live Hits could still take ``maximum x Hits - answers wanted``. That is
    exact while no Hit wants more than the maximum. After a maximum is lowered below some Hits' count it
    errs towards "covers", which only skips the ranking: every reservation still refuses what the cap
    cannot pay."""
    if totals is None:
        totals = get_job_totals(job)
    outstanding = max(max_answers_of(job) * totals.hits - totals.answers_wanted, 0)
    row = Job.objects.values("budget_cap", "budget_reserved").get(pk=job.pk)
    left: Decimal = (row["budget_cap"] or Decimal("0")) - row["budget_reserved"]
    return left >= hits_cost(job, hit_count=outstanding, extra_per_hit=1)


def _sweep_depth(job: Job, totals: JobTotals) -> int:
    """The answers every Hit gets before a short budget goes to the least settled ones (the replay's
    ``first_depth``): half of what the whole budget pays per Hit when that is more than the minimum, else 0
    (no sweep). A job with a pre-label model has none: the model's agreement is what stops its items early,
    and its Hits start at one answer."""
    if job.prelabel_model:
        return 0
    minimum = policy_of(job).min_answers
    depth = first_depth(minimum, totals.hits, totals.answers_wanted + (_room(job) or 0))
    return depth if depth > minimum else 0


def _short_budget(job: Job, totals: JobTotals) -> bool:
    """Whether the job has a budget that cannot pay every extra answer its Hits could still want."""
    return job.budget_cap is not None and not _budget_covers_every_extra(job, totals)


def _below_sweep_depth(job: Job, totals: JobTotals, hit_id: int) -> bool:
    """Whether Hit ``hit_id`` of a job with a short budget is below the sweep's depth (one query for the Hit,
    only when there is a sweep)."""
    depth = _sweep_depth(job, totals)
    return depth > 0 and Hit.objects.filter(pk=hit_id, assignments_wanted__lt=depth).exists()


def _grant(*, job: Job, hit_ids: list[int], actor: Actor, now: datetime, urgent: Sequence[int] = ()) -> int:
    """Reserve one more answer's worst-case cost on each Hit, then raise their wanted count by one (a
    conditional UPDATE) and reopen them; the ``urgent`` ones (the model disputes a worker) are handed out
    before any other Hit of the job. Returns the Hits changed; 0 when the budget refused."""
    top = max_answers_of(job)
    with transaction.atomic():
        # Only complete Hits: a Hit another pass has just reopened already has the answer it wanted.
        rows = list(
            Hit.objects.select_for_update()
            .filter(pk__in=hit_ids, assignments_wanted__lt=top, is_gold=False, state=HitState.COMPLETE)
            .order_by("pk")
            .values_list("pk", "assignments_wanted")
        )
        if not rows:
            return 0
        # Hit rows, then the job row: the lock order of every path (the pool, submissions, cancel_job, a
        # request for more answers; reserve_budget would lock the job next anyway). A cancel or pause that
        # committed since the pass read the job wins, and nothing is reserved or reopened on a job that
        # stopped; a cancel that comes after waits for these Hits and then cancels the ones reopened here.
        if not Job.objects.select_for_update().filter(pk=job.pk, state__in=ALLOCATING_STATES).exists():
            return 0
        digest = hashlib.sha256(repr(rows).encode()).hexdigest()[:24]
        try:
            with transaction.atomic():
                reserve_budget(
                    job=job,
                    amount=hits_cost(job, hit_count=len(rows), extra_per_hit=1),
                    key=f"job:{job.pk}:adaptive:{digest}",
                    actor=actor,
                    reason="adaptive redundancy",
                    now=now,
                )
        except BudgetExceeded as exc:
            _note_budget_exhausted(job, str(exc), now)
            return 0
        # The rows are locked, so one conditional UPDATE raises each by exactly one.
        changed = Hit.objects.filter(pk__in=[pk for pk, _ in rows], assignments_wanted__lt=top).update(
            assignments_wanted=F("assignments_wanted") + 1,
            state=HitState.OPEN,
            priority=Case(
                When(pk__in=list(urgent), then=Value(DISPUTED_PRIORITY)),
                default=F("priority"),
                output_field=SmallIntegerField(),
            ),
        )
        reopened = Job.objects.filter(pk=job.pk, state=JobState.COMPLETED).update(
            state=JobState.PUBLISHED, completed_at=None
        )
        queue_audit_event(
            actor=actor,
            action="job.adaptive_answers_requested",
            object_type="job",
            object_id=job.pk,
            # The job's row is locked in ALLOCATING_STATES: it was completed exactly when it was reopened.
            before={"state": JobState.COMPLETED.value if reopened else JobState.PUBLISHED.value},
            after={
                "state": JobState.PUBLISHED.value,
                "hits": [pk for pk, _ in rows],
                "extra": 1,
                "reopened_job": bool(reopened),
            },
            created_at=now,
        )
    return changed


def _note_budget_exhausted(job: Job, message: str, now: datetime) -> None:
    """Stop asking; audit the first refusal of the job only."""
    # get_or_create first: the allocation pass may be writing the job's first row at the same moment
    # (``_note_budget_step``), and a unique-key error here would fail the submit that called us.
    AdaptiveSkills.objects.get_or_create(job_id=job.pk, defaults={"labels": list(job.labels)})
    first = AdaptiveSkills.objects.filter(job_id=job.pk, budget_exhausted_at__isnull=True).update(
        budget_exhausted_at=now
    )
    if first:
        queue_audit_event(
            actor=SYSTEM,
            action="job.adaptive_budget_exhausted",
            object_type="job",
            object_id=job.pk,
            after={"message": message},
            created_at=now,
        )


def allocate_adaptive_answers(
    *, job: Job, actor: Actor = SYSTEM, now: datetime | None = None, connector: MTurkMarketplace | None = None
) -> int:
    """Give one more answer to the job's complete Hits that want one, best expected gain first, as far as
    the budget pays (set-based: one posterior pass, one reservation, conditional updates). When the budget
    cannot pay for every extra answer the job's Hits could still want, only the least settled Hits are
    paid in this pass (:func:`~tasks.aggregation.adaptive.neediest`); the next pass, after their answers,
    moves on to the next confidence step. Returns the Hits reopened (internal pool) or extended (MTurk)."""
    now = now or timezone.now()
    job = Job.objects.get(pk=job.pk)
    if not job.is_adaptive or job.state not in ALLOCATING_STATES:
        return 0
    rows = list(
        HitItem.objects.filter(
            hit__job_id=job.pk,
            hit__is_gold=False,
            hit__state=HitState.COMPLETE,
            hit__assignments_wanted__lt=max_answers_of(job),
        ).values_list("hit_id", "item_id", "hit__assignments_wanted")
    )
    if not rows:
        return 0
    links = [(hit_id, item_id) for hit_id, item_id, _ in rows]
    totals = get_job_totals(job)
    short = _short_budget(job, totals)
    state = items_state(job, [item for _, item in links], load_skills(job), short_budget=short)
    rounds: list[tuple[np.ndarray, float | None]] = [(state.wants, None)]
    if short:
        # A short budget first pays the replay's uniform sweep (every Hit up to the same depth, whatever its
        # answers say), then goes to the least settled items, one confidence step at a time (the replay's
        # --budget measures this rule), so it is not spent on items that are nearly settled. When no Hit of
        # the sweep could be given an answer (MTurk refused them, say), the pass goes on to the step.
        step = neediest_step(state.settled, state.wants, policy_of(job).target)
        rounds = [(below_step(state.settled, state.wants, step), step)]
        depth = _sweep_depth(job, totals)
        below = np.asarray([wanted < depth for _, _, wanted in rows], dtype=bool)
        if below.any():
            rounds.insert(0, (below, None))
    for wanting, step in rounds:
        _note_budget_step(job, step)
        done = _pay(job, links, wanting, state, actor=actor, now=now, connector=connector)
        if done:
            return done
    return 0


def _pay(
    job: Job,
    links: list[tuple[int, int]],
    wanting: np.ndarray,
    state: ItemsState,
    *,
    actor: Actor,
    now: datetime,
    connector: MTurkMarketplace | None,
) -> int:
    """One more answer for each Hit with an item in ``wanting``, the best expected gain first, as far as the
    budget pays; returns the Hits reopened (internal pool) or extended (MTurk)."""
    best: dict[int, float] = {}
    disputed: set[int] = set()
    for (hit_id, _), wants, gain, dispute in zip(links, wanting, state.gain, state.disputed, strict=True):
        if wants:
            best[hit_id] = max(best.get(hit_id, 0.0), float(gain))
            if dispute:
                disputed.add(hit_id)
    ranked = sorted(best, key=lambda h: (-best[h], h))
    affordable = _affordable(job, len(ranked))
    chosen = ranked[:affordable]
    if len(chosen) < len(ranked):
        _note_budget_exhausted(job, f"{len(ranked) - len(chosen)} Hits wanted an answer the budget cannot pay.", now)
    if not chosen:
        return 0
    if job.marketplace == Marketplace.MTURK:
        return _extend_on_mturk(job, chosen, actor, connector)
    return _grant(job=job, hit_ids=chosen, actor=actor, now=now, urgent=sorted(disputed.intersection(chosen)))


def _note_budget_step(job: Job, step: float | None) -> None:
    """Keep the confidence step a short budget is serving on the job's skills row, for the progress card
    (one conditional UPDATE, none when the value is unchanged)."""
    rows = AdaptiveSkills.objects.filter(job_id=job.pk)
    if step is None:
        rows.filter(budget_step__isnull=False).update(budget_step=None)
    elif not rows.exclude(budget_step=step).update(budget_step=step):
        # no row yet (no re-fit so far), or it holds this step already
        rows.get_or_create(job_id=job.pk, defaults={"labels": list(job.labels), "budget_step": step})


def _room(job: Job) -> int | None:
    """How many more answers the job's cap pays for beyond what it has reserved (None: no limit)."""
    unit = hits_cost(job, hit_count=1, extra_per_hit=1)
    if job.budget_cap is None or unit <= 0:
        return None
    return max(0, int((job.budget_cap - job.budget_reserved) // unit))


def _affordable(job: Job, wanted: int) -> int:
    """How many of ``wanted`` extra answers (one per Hit) the job's cap still pays for."""
    room = _room(job)
    return wanted if room is None else min(wanted, room)


def _extend_on_mturk(job: Job, hit_ids: list[int], actor: Actor, connector: MTurkMarketplace | None) -> int:
    """One more assignment per HIT through CreateAdditionalAssignmentsForHIT (the cost is committed to the
    ledger by ``extend_mturk_hit``); a HIT at its maximum or refused by MTurk is skipped."""
    from tasks.models import MTurkHit
    from tasks.services.mturk_hits import extend_mturk_hits_within_budget

    created_with = dict(MTurkHit.objects.filter(hit_id__in=hit_ids).values_list("hit_id", "max_assignments"))
    below_max = [
        hit
        for hit in Hit.objects.filter(pk__in=hit_ids).order_by("pk")
        if hit.assignments_wanted + 1 <= max_answers_of(job, created_with.get(hit.pk))
    ]
    done = extend_mturk_hits_within_budget(
        job=job, hits=below_max, extra=1, actor=actor, key="adaptive", reason="adaptive redundancy", connector=connector
    )
    if done.budget is not None:
        _note_budget_exhausted(job, str(done.budget), timezone.now())
    if done.extended:
        _reopen_after_extension(job, done.extended, actor)
    return done.extended


def _reopen_after_extension(job: Job, extended: int, actor: Actor) -> None:
    """MTurk HITs of the job took more assignments: a completed job is published again (its new work is collected
    and settled like any other), audited as the pool's extra answers are."""
    reopen_after_more_work(
        job_id=job.pk,
        actor=actor,
        action="job.adaptive_answers_requested",
        after={"hits": extended, "extra": 1, "marketplace": "mturk"},
    )
