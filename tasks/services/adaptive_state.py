"""Adaptive redundancy's state on a live job: the job's policy, its cached worker skills (a full Dawid-Skene
re-fit, :func:`refit_adaptive_skills`) and its items' posteriors (:func:`items_state`). What acts on them
(asking for more answers, allocation under a short budget) is in :mod:`tasks.services.adaptive`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.db import transaction
from django.utils import timezone

from tasks.aggregation.adaptive import (
    AnswerMoments,
    FinalModel,
    ItemPosteriors,
    RedundancyPolicy,
    WorkerSkills,
    expected_gain,
    final_model,
    fit_skills,
    settledness,
)
from tasks.aggregation.base import Answers
from tasks.aggregation.dawid_skene import DawidSkene
from tasks.aggregation.replay import DEFAULT_CONCENTRATION
from tasks.models import AdaptiveSkills, Answer, AssignmentState, Job, Prediction
from tasks.selectors import get_job_totals
from workforce.audit import Actor, record_audit_event
from workforce.marketplaces.mturk_fees import LARGE_HIT_ASSIGNMENTS
from workforce.models import Marketplace

REFIT_GROWTH = 0.1  # refit once the job's answers have grown by 10% since the last fit ...
REFIT_MIN_NEW = 20  # ... and by at least this many (early on, 10% is a handful of answers)
MODEL_ACCURACY_CAP = 0.99  # a model's score is trusted at most this much as an annotator's accuracy
SYSTEM = Actor.system("adaptive")


def policy_of(job: Job) -> RedundancyPolicy:
    assert job.adaptive_min_answers is not None and job.adaptive_target is not None
    return RedundancyPolicy(
        min_answers=job.adaptive_min_answers,
        max_answers=job.adaptive_max_answers or job.adaptive_min_answers,
        target=job.adaptive_target,
    )


def max_answers_of(job: Job, hit_wanted_at_publish: int | None = None) -> int:
    """The most answers a Hit of ``job`` may want (MTurk: a HIT created below 10 stays below 10)."""
    top = job.adaptive_max_answers or job.answers_per_hit
    if job.marketplace == Marketplace.MTURK and (hit_wanted_at_publish or job.answers_per_hit) < LARGE_HIT_ASSIGNMENTS:
        top = min(top, LARGE_HIT_ASSIGNMENTS - 1)
    return top


# --- skills -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkillsView:
    skills: WorkerSkills
    worker_rows: dict[int, int]
    submitted_at_fit: int  # the job's submitted work (tallies) at the last re-fit
    final: FinalModel | None = None  # the final aggregation's reading at the last re-fit (same worker rows)


def load_skills(job: Job) -> SkillsView:
    """The job's cached skills, or every worker at 70% accuracy before the first fit."""
    row = AdaptiveSkills.objects.filter(job_id=job.pk).first()
    k = len(job.labels)
    if row is None or row.labels != list(job.labels) or not row.log_conf:
        return SkillsView(WorkerSkills.uninformed(0, k), {}, row.submitted_at_fit if row else 0)
    skills = WorkerSkills(np.asarray(row.log_conf, dtype=float), np.asarray(row.log_prior, dtype=float))
    return SkillsView(skills, {int(w): i for i, w in enumerate(row.workers)}, row.submitted_at_fit, _final_of(row))


def _final_of(row: AdaptiveSkills) -> FinalModel | None:
    stored = row.final_model or {}
    if not stored.get("log_conf"):
        return None  # fitted before the final model was kept: the next re-fit stores it
    skills = WorkerSkills(np.asarray(stored["log_conf"], dtype=float), np.asarray(stored["log_prior"], dtype=float))
    moments = AnswerMoments(np.asarray(stored["mean"], dtype=float), np.asarray(stored["var"], dtype=float))
    return FinalModel(skills, moments)


def _job_answers(job: Job) -> tuple[Answers, list[int]]:
    """Every counted answer of the job's non-gold items as coded arrays, and the worker id of each code."""
    rows = list(
        Answer.objects.filter(job_id=job.pk, item__is_gold=False)
        .exclude(assignment__state=AssignmentState.REJECTED)
        .values_list("item_id", "worker_id", "value")
    )
    code = {str(label): i for i, label in enumerate(job.labels)}
    kept = [(i, w, code[v]) for i, w, v in rows if isinstance(v, str) and v in code]
    items = sorted({i for i, _, _ in kept})
    workers = sorted({w for _, w, _ in kept})
    item_pos = {i: n for n, i in enumerate(items)}
    worker_pos = {w: n for n, w in enumerate(workers)}
    answers = Answers.from_codes(
        np.asarray([item_pos[i] for i, _, _ in kept], dtype=np.int64),
        np.asarray([worker_pos[w] for _, w, _ in kept], dtype=np.int64),
        np.asarray([lab for _, _, lab in kept], dtype=np.int64),
        [str(i) for i in items],
        [str(w) for w in workers],
        [str(label) for label in job.labels],
        classes=[str(label) for label in job.labels],
    )
    return answers, workers


def refit_adaptive_skills(*, job: Job, actor: Actor = SYSTEM, now: datetime | None = None) -> AdaptiveSkills:
    """Fit the job's worker skills on every answer so far (Dawid-Skene) and cache them."""
    now = now or timezone.now()
    submitted = get_job_totals(job).answers_submitted  # read first: what arrives meanwhile counts as new
    answers, workers = _job_answers(job)
    fitted = DawidSkene().fit(answers) if answers.n_answers and answers.n_classes > 1 else None
    skills = fit_skills(answers, fitted=fitted)
    final = final_model(fitted, answers) if fitted is not None else None
    with transaction.atomic():
        row, _ = AdaptiveSkills.objects.update_or_create(
            job_id=job.pk,
            defaults={
                "labels": list(job.labels),
                "workers": workers,
                "log_conf": skills.log_conf.tolist(),
                "log_prior": skills.log_prior.tolist(),
                "final_model": {} if final is None else _stored(final),
                "answers_at_fit": answers.n_answers,
                "submitted_at_fit": submitted,
                "fitted_at": now,
            },
        )
        record_audit_event(
            actor=actor,
            action="job.adaptive_skills_refitted",
            object_type="job",
            object_id=job.pk,
            after={"answers": answers.n_answers, "workers": len(workers)},
        )
    return row


def _stored(final: FinalModel) -> dict[str, object]:
    return {
        "log_conf": final.skills.log_conf.tolist(),
        "log_prior": final.skills.log_prior.tolist(),
        "mean": final.moments.mean.tolist(),
        "var": final.moments.var.tolist(),
    }


def refit_due(job: Job, submitted_at_fit: int, submitted_now: int) -> bool:
    """Whether the job's submitted work has grown enough since the last re-fit (``REFIT_GROWTH``, and
    ``REFIT_MIN_NEW`` answers at ``items_per_hit`` answers per assignment). Reads the tallies, not the
    answers: this runs whenever a Hit of the job completes."""
    grown = submitted_now - submitted_at_fit
    return (
        submitted_now > 0
        and submitted_now >= submitted_at_fit * (1.0 + REFIT_GROWTH)
        and grown * max(job.items_per_hit, 1) >= REFIT_MIN_NEW
    )


# --- posteriors ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemsState:
    item_ids: list[int]
    wants: np.ndarray  # bool per item
    gain: np.ndarray  # expected gain of one more answer, per item
    confidence: np.ndarray
    disputed: np.ndarray  # bool per item: the pre-label model contradicts the item's first answer
    settled: np.ndarray  # per item, the confidence that the answers still to come would not change its label


def items_state(job: Job, item_ids: Sequence[int], view: SkillsView, *, short_budget: bool = False) -> ItemsState:
    """Posteriors of ``item_ids`` from their answers (and the job's confident, agreeing model), and which of
    them want another answer under the job's policy. ``short_budget``: the budget cannot pay every extra
    answer, so an item is settled only when the final aggregation's model agrees (the replay's rule with a
    budget, :func:`~tasks.aggregation.adaptive.settledness`)."""
    ids = list(item_ids)
    pos = {item: n for n, item in enumerate(ids)}
    code = {str(label): i for i, label in enumerate(job.labels)}
    rows = [
        (pos[i], view.worker_rows.get(w, -1), code[v])
        for i, w, v in Answer.objects.filter(item_id__in=ids)
        .exclude(assignment__state=AssignmentState.REJECTED)
        .order_by("id")
        .values_list("item_id", "worker_id", "value")
        if isinstance(v, str) and v in code
    ]
    state = ItemPosteriors(len(ids), view.skills, concentration=DEFAULT_CONCENTRATION)
    arr = np.asarray(rows, dtype=np.int64).reshape(-1, 3)
    state.add(arr[:, 0], arr[:, 1], arr[:, 2])
    policy = policy_of(job)
    disputed = np.zeros(len(ids), dtype=bool)
    if job.prelabel_model:
        disputed = _add_model(job, ids, pos, code, rows, state, policy.target)
    confidence = state.confidence()
    cap = policy.max_answers or policy.min_answers
    # The replay's rule (tasks.aggregation.replay): stop once the answers still to come up to the maximum
    # would change the item's label with probability at most 1 - target.
    final = None
    if short_budget and view.final is not None:
        final = (ItemPosteriors(len(ids), view.final.skills, concentration=DEFAULT_CONCENTRATION), view.final)
        final[0].add(arr[:, 0], arr[:, 1], arr[:, 2])
    settled = settledness(state, np.maximum(cap - state.n_answers, 0), final)
    wants = policy.wants_more(state.n_answers, settled)
    return ItemsState(ids, wants, expected_gain(state.posterior(), view.skills), confidence, disputed, settled)


def _add_model(
    job: Job,
    ids: list[int],
    pos: dict[int, int],
    code: dict[str, int],
    rows: list[tuple[int, int, int]],
    state: ItemPosteriors,
    target: float,
) -> np.ndarray:
    """The model as one more annotator on the items where it is confident and agrees with the first answer.
    Returns, per item, whether the model contradicts the first answer (whatever its score)."""
    first: dict[int, int] = {}
    for item, _, label in rows:
        first.setdefault(item, label)
    k = len(code)
    disputed = np.zeros(len(ids), dtype=bool)
    for item_id, value, score in Prediction.objects.filter(
        job_id=job.pk, model_name=job.prelabel_model, item_id__in=ids
    ).values_list("item_id", "value", "score"):
        item = pos[item_id]
        label = code.get(value, -1) if isinstance(value, str) else -1
        if label < 0 or item not in first:
            continue
        if label != first[item]:
            disputed[item] = True
            continue
        if score < target:
            continue
        acc = min(float(score), MODEL_ACCURACY_CAP)
        row = np.full(k, np.log((1.0 - acc) / max(k - 1, 1)))
        row[label] = np.log(acc)
        state.log_lik[item] += row
        state.n_answers[item] += 1
    return disputed
