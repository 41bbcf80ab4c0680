"""Replay recorded answers as if they arrived live, under a fixed or an adaptive redundancy policy.

Every item's recorded answers are put in a random order (seeded); an item's next answer is the
next one in that order, so a policy can only ever use a prefix of what was recorded.

- ``fixed``: every item gets its first ``max_answers`` answers (all of them when there is no
  maximum), as a job with fixed redundancy would.
- ``adaptive``: every item gets ``min_answers`` answers (with a ``budget``, at least
  :data:`SWEEP_SHARE` of the budget's mean answers per item, see below); from then on answers
  arrive in rounds, one more for every item that
  :class:`~tasks.aggregation.adaptive.RedundancyPolicy` says needs one,
  with the item posteriors updated incrementally from the current worker skills.  An item needs
  one while the probability that its label would still change before the cap (its recorded
  answers, or ``max_answers``) is above ``1 - target``
  (:meth:`~tasks.aggregation.adaptive.ItemPosteriors.flip_probability`): ``target`` is the
  confidence that stopping gives the label that all the answers would give.  The skills are
  re-fitted on everything collected so far (a full Dawid-Skene fit) whenever the number of answers
  has grown by ``refit_growth`` since the last fit, and once more when no item wants another
  answer (so an item a re-fit makes less certain can still get more).  The posteriors discount
  agreeing answers to one item (``concentration``, :func:`~tasks.aggregation.adaptive.evidence_weight`).
  With a ``budget`` (answers in all, the minimum included) the rounds stop when it is spent; while it
  cannot pay for every answer the open items could still take, a round serves only the neediest items
  (:func:`~tasks.aggregation.adaptive.neediest`: the least settled first, one confidence step at a time,
  the largest expected gain first when the budget left cannot pay the whole step), as the live
  allocation does (``tasks.services.adaptive.allocate_adaptive_answers``).  Before that, a budget pays a
  uniform sweep: every item gets ``int(SWEEP_SHARE * budget / items)`` answers (up to its cap) without
  looking at any of them.  Spending the whole budget on the least settled items gave hard items most of
  the answers, and the final aggregation then fitted the workers' matrices on a sample that over-weights
  hard items (the replays of duck lost 0.7 points against fixed redundancy; half the budget swept first
  keeps the sample closer to the full one). The live allocation sweeps the same way.
  With a budget an item also counts as settled only when the final aggregation agrees
  (:func:`~tasks.aggregation.adaptive.settledness`): the answers are read a second time with that
  fit's own Dawid-Skene matrices (no shrinkage towards the average worker, the same discount of
  agreeing answers), the answers to come drawn from the job's workers as often as each has answered,
  and the two flip probabilities are added (a union bound). The allocation's shrunk skills alone call items
  settled whose label the final fit still reads differently; the replays of dog lost 0.5 points that way.

Why these defaults (``target`` 0.997, ``concentration`` 4): with independent answers and a 0.99
target on the top class, items stopped at 0.99 were wrong 4-30% of the time and the replays of the
crowd datasets with 5+ answers per item lost up to 8 points of accuracy against fixed redundancy
(duck, 39 answers per item); ``tests/benchmarks/replay_table.py`` prints the comparison.

Both end like a job does: the chosen aggregation ``method`` is fitted on the answers used, and its
labels are scored against gold.  Pure numpy; the ``replay`` management command prints the result.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import TextIO

import numpy as np

from tasks.aggregation.adaptive import (
    FinalModel,
    ItemPosteriors,
    RedundancyPolicy,
    WorkerSkills,
    expected_gain,
    final_model,
    fit_skills,
    neediest,
    settledness,
    subset,
)
from tasks.aggregation.base import Answers, BoolArray, FloatArray, Gold, IntArray
from tasks.aggregation.dawid_skene import DawidSkene
from tasks.aggregation.registry import CATEGORICAL, get_aggregator

POLICIES = ("fixed", "adaptive")
DEFAULT_MIN_ANSWERS = 2
DEFAULT_TARGET = 0.997
DEFAULT_CONCENTRATION = 4.0
SWEEP_SHARE = 0.5  # of a budget, spent evenly before any item is chosen by how settled it is


@dataclass(frozen=True)
class ReplayResult:
    policy: str
    method: str
    seed: int
    min_answers: int
    max_answers: int | None
    target: float
    concentration: float | None
    budget: int | None
    tasks: int
    gold_tasks: int
    answers_recorded: int
    answers_used: int
    answers_per_task: float
    accuracy: float
    refits: int
    rounds: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def arrival_rank(answers: Answers, seed: int) -> IntArray:
    """For every answer, its position (0, 1, ...) in a seeded random order of its task's answers."""
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(answers.n_answers), answers.task))
    starts = np.zeros(answers.n_tasks + 1, dtype=np.int64)
    np.cumsum(np.bincount(answers.task, minlength=answers.n_tasks), out=starts[1:])
    rank = np.empty(answers.n_answers, dtype=np.int64)
    rank[order] = np.arange(answers.n_answers) - starts[answers.task[order]]
    return rank


def replay(
    answers: Answers,
    gold: Gold,
    *,
    policy: str,
    redundancy: RedundancyPolicy,
    seed: int = 0,
    method: str = "ds",
    refit_growth: float = 0.1,
    skill_model: str = "ds",
    skill_strength: float | None = None,
    concentration: float | None = DEFAULT_CONCENTRATION,
    budget: int | None = None,
) -> ReplayResult:
    """Run one replay and score it on the ``gold`` tasks (which must not be empty); ``budget`` caps the
    answers the adaptive policy uses in all (it is ignored by ``fixed``)."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    if method not in CATEGORICAL:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(CATEGORICAL)}")
    if gold.size == 0:
        raise ValueError("no gold label belongs to a task that has answers, so accuracy cannot be measured")
    rank = arrival_rank(answers, seed)
    cap = answer_caps(answers, redundancy)
    if budget is not None and policy == "adaptive":
        floor = int(np.minimum(cap, redundancy.min_answers).sum())
        if budget < floor:
            raise ValueError(
                f"a budget of {budget} answers does not pay for the minimum of {redundancy.min_answers} "
                f"answers per item ({floor} answers)"
            )
    refits = rounds = 0
    if policy == "fixed":
        used = rank < cap[answers.task]
    else:
        used, refits, rounds = adaptive_selection(
            answers, rank, cap, redundancy, refit_growth, skill_model, skill_strength, concentration, budget
        )
    model = get_aggregator(method).fit(subset(answers, used))
    accuracy = float((model.label_codes_[gold.task] == gold.label).mean())
    n_used = int(used.sum())
    return ReplayResult(
        policy=policy,
        method=method,
        seed=seed,
        min_answers=redundancy.min_answers,
        max_answers=redundancy.max_answers,
        target=redundancy.target,
        concentration=concentration if policy == "adaptive" else None,
        budget=budget if policy == "adaptive" else None,
        tasks=answers.n_tasks,
        gold_tasks=gold.size,
        answers_recorded=answers.n_answers,
        answers_used=n_used,
        answers_per_task=n_used / max(answers.n_tasks, 1),
        accuracy=accuracy,
        refits=refits,
        rounds=rounds,
    )


def answer_caps(answers: Answers, redundancy: RedundancyPolicy) -> IntArray:
    """Per task, the answers a policy may use: every recorded one, or the first ``max_answers``."""
    available = np.bincount(answers.task, minlength=answers.n_tasks)
    return available if redundancy.max_answers is None else np.minimum(available, redundancy.max_answers)


def parse_budget(text: str, answers: Answers, redundancy: RedundancyPolicy) -> int:
    """``"5600"`` (answers) or ``"70%"`` (of the answers fixed redundancy would use) as a number of answers."""
    value = text.strip()
    try:
        if value.endswith("%"):
            share = float(value[:-1])
            if not 0 < share <= 100:
                raise ValueError
            return int(share / 100 * int(answer_caps(answers, redundancy).sum()))
        count = int(value)
    except ValueError:
        raise ValueError(f"the budget {text!r} is neither a number of answers nor a share such as 70%") from None
    if count < 1:
        raise ValueError("the budget must be at least 1 answer")
    if count > answers.n_answers:  # more than the replay could ever spend (and, when huge, beyond numpy's integers)
        raise ValueError(f"the budget must be at most the {answers.n_answers} answers recorded")
    return count


def adaptive_selection(
    answers: Answers,
    rank: IntArray,
    cap: IntArray,
    redundancy: RedundancyPolicy,
    refit_growth: float,
    skill_model: str,
    skill_strength: float | None,
    concentration: float | None,
    budget: int | None = None,
) -> tuple[BoolArray, int, int]:
    """The answers the adaptive policy uses, and how many re-fits and rounds it took (``rank`` from
    :func:`arrival_rank`, ``cap`` the answers each item may get; ``tests/benchmarks/replay_diagnose.py``
    calls it directly to re-score the same selection; ``skill_strength`` None is :func:`fit_skills`'s
    default)."""
    task, worker, label = answers.task, answers.worker, answers.label
    start = WorkerSkills.uninformed(answers.n_workers, answers.n_classes)
    state = ItemPosteriors(answers.n_tasks, start, concentration=concentration)
    used = rank < np.minimum(cap, first_depth(redundancy.min_answers, answers.n_tasks, budget))[task]
    state.add(task[used], worker[used], label[used])
    # with a budget, the final aggregation's view of the same answers too (see the module docstring)
    final: tuple[ItemPosteriors, FinalModel] | None = None
    refits = rounds = 0
    fitted_on = -1
    while True:
        n_used = int(used.sum())
        if n_used > fitted_on and (fitted_on < 0 or n_used >= fitted_on * (1.0 + refit_growth)):
            sample = subset(answers, used)
            ds = DawidSkene().fit(sample) if skill_model == "ds" or budget is not None else None
            skills = fit_skills(sample, model=skill_model, strength=skill_strength, fitted=ds)
            state.rebuild(skills, task[used], worker[used], label[used])
            if budget is not None and ds is not None:
                model = final_model(ds, sample)
                final = (ItemPosteriors(answers.n_tasks, model.skills, concentration=concentration), model)
                final[0].add(task[used], worker[used], label[used])
            fitted_on, refits = n_used, refits + 1
        # the confidence that matters is that the label will not change before the cap
        settled = settledness(state, cap - state.n_answers, final)
        wants = redundancy.wants_more(state.n_answers, settled) & (state.n_answers < cap)
        if budget is not None:
            wants = _within_budget(state, wants, settled, cap, budget - n_used, redundancy.target)
        if not wants.any():
            if n_used > fitted_on:  # settle with skills that have seen every answer
                fitted_on = -1
                continue
            return used, refits, rounds
        new = wants[task] & (rank == state.n_answers[task])
        state.add(task[new], worker[new], label[new])
        if final is not None:
            final[0].add(task[new], worker[new], label[new])
        used |= new
        rounds += 1


def first_depth(min_answers: int, n_tasks: int, budget: int | None) -> int:
    """The answers every item gets before the adaptive rounds (up to its cap): ``min_answers``, or with a
    ``budget`` the uniform sweep's ``int(SWEEP_SHARE * budget / n_tasks)`` when that is more."""
    if budget is None or n_tasks == 0:
        return min_answers
    return max(min_answers, int(SWEEP_SHARE * budget / n_tasks))


def _within_budget(
    state: ItemPosteriors, wants: BoolArray, settled: FloatArray, cap: IntArray, left: int, target: float
) -> BoolArray:
    """The items of ``wants`` that get the round's answers when ``left`` answers remain in the budget."""
    if left <= 0:
        return np.zeros_like(wants)
    if int((cap - state.n_answers)[wants].sum()) <= left:
        return wants  # the budget pays everything these items could still take
    wants = neediest(settled, wants, target)
    if int(wants.sum()) <= left:
        return wants
    gain = np.where(wants, expected_gain(state.posterior(), state.skills), -1.0)
    chosen = np.zeros_like(wants)
    chosen[np.argsort(-gain, kind="stable")[:left]] = True
    return chosen


class ReplayError(Exception):
    """The replay cannot run; the message is one sentence for the user (exit code 2)."""


def run_replay(
    *,
    answers: str,
    gold: str,
    policy: str,
    redundancy: RedundancyPolicy,
    seed: int,
    method: str,
    as_json: bool,
    stdout: TextIO,
    concentration: float | None = DEFAULT_CONCENTRATION,
    budget: str | None = None,
) -> ReplayResult:
    """Read the CSVs, replay (``budget`` as :func:`parse_budget` reads it), print the result (one JSON
    object with ``as_json``, else a line)."""
    from tasks.aggregation.io import InputError, read_answers_csv, read_gold_csv

    try:
        gold_labels = read_gold_csv(gold)
        data = read_answers_csv(answers, extra_labels=list(gold_labels.values()))
    except InputError as exc:
        raise ReplayError(str(exc)) from exc
    coded = data.encode_gold(gold_labels)
    try:
        answers_budget = None if budget is None else parse_budget(budget, data, redundancy)
        result = replay(
            data,
            coded,
            policy=policy,
            redundancy=redundancy,
            seed=seed,
            method=method,
            concentration=concentration,
            budget=answers_budget,
        )
    except ValueError as exc:
        raise ReplayError(f"{exc}.") from exc
    if as_json:
        stdout.write(json.dumps(result.as_dict()) + "\n")
    else:
        budget_note = "" if result.budget is None else f", budget {result.budget}"
        stdout.write(
            f"{result.policy}: accuracy {result.accuracy:.4f} on {result.gold_tasks} gold tasks; "
            f"{result.answers_used} of {result.answers_recorded} answers used "
            f"({result.answers_per_task:.2f} per task{budget_note}); {result.refits} re-fits, {result.rounds} rounds\n"
        )
    return result
