"""Adaptive redundancy: after every answer, does this item need another one?

Pure numpy, no Django.  The pieces, as a live job would use them:

- :class:`RedundancyPolicy`: a minimum and a maximum number of answers per item and a target
  confidence.  An item wants another answer while it has fewer than the minimum, or while its
  posterior's top class is below the target, it has fewer than the maximum, and the answers still
  to come could change its leading class (:meth:`ItemPosteriors.decided`).
- :class:`WorkerSkills`: every worker's confusion matrix ``P(answered l | true k)`` and the class
  prior, taken from a full re-fit (:func:`fit_skills`, Dawid-Skene or one-coin Dawid-Skene over
  all answers so far).  A worker's matrix is shrunk towards the population's matrix by
  ``strength`` pseudo-answers per true class (by default :data:`STRENGTH_PER_CLASS` times the number
  of classes, so as many per (answered, true) cell whatever the number of classes), so a worker seen
  twice is trusted like the average worker, not like a perfect one; a worker never seen gets the
  population's matrix.
- :class:`ItemPosteriors`: the running log posterior of every item, updated in place as answers
  arrive (``add``: one sparse add of each answer's log-likelihood row, warm-started from the
  current skills) and rebuilt from scratch after a re-fit (``rebuild``).

Answers to one item are not independent given its class.  Some items look like another class to
most people, so three agreeing answers are weaker evidence than three independent ones, and a
posterior that multiplies them is overconfident exactly where stopping early hurts (the replays in
``tests/benchmarks/replay_table.py`` show items stopped at 0.99 that are wrong 5-15% of the time).
With ``concentration=c``, :class:`ItemPosteriors` treats an item's answers as exchangeable draws from
an item-specific answer distribution (a Dirichlet with ``c`` prior answers around the class's typical
distribution, a Polya urn): answer number ``m + 1`` carries ``c / (c + m)`` of its independent
log-likelihood, so the ``n`` answers together carry ``f(n) = c * (digamma(c + n) - digamma(c))`` answers'
worth of evidence, which grows like ``c * log(n)`` rather than ``n``.  Every answer's row is weighted by
``f(n) / n``, which keeps each worker's skill in the weighting.  ``concentration=None`` (the default
here) keeps the independent model; live jobs and the replay use ``DEFAULT_CONCENTRATION`` (4).

When the budget cannot pay for every answer the items still want, :func:`neediest` says which items go
first: those furthest from settled, one confidence step (:data:`CONFIDENCE_STEPS`) at a time, and within
the step the largest :func:`expected_gain`; so a short budget is not spent on items that are nearly settled
while others are still a toss-up.

Two stopping tests read the posteriors. The cheap bound :meth:`ItemPosteriors.decided` (the worst-case
remaining answers cannot overturn the lead), and the one live jobs and the replay use: the probability
that the answers still to come up to the cap would change the label,
:meth:`ItemPosteriors.flip_probability`, is at most ``1 - target``. Far from the cap that is about the
rival classes' posterior (enough answers would reveal the class); near the cap it shrinks to zero,
because a few more answers rarely undo a lead, so items stop there without the worst case that
``decided`` assumes.

With a short budget an item is settled only when the final aggregation, too, expects its label to stay
(:func:`settledness`, :func:`final_model`: the Dawid-Skene fit's own matrices and prior, answers to come from
the job's workers mixed by their share of answers, :func:`mixture_moments`).

Everything is vectorised over answers and items; a caller loops only over arrivals (or rounds of
arrivals), never over items.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from tasks.aggregation.base import Answers, BoolArray, FloatArray, IntArray, softmax_rows
from tasks.aggregation.dawid_skene import DawidSkene, class_prior
from tasks.aggregation.incidence import Incidence
from tasks.aggregation.one_coin_dawid_skene import OneCoinDawidSkene

SKILL_MODELS = ("ds", "ods")
# When the budget is short, items are brought to each of these confidences in turn (up to the target).
CONFIDENCE_STEPS = (0.9, 0.97, 0.99, 0.997, 0.999, 0.9997, 0.9999, 0.99997, 0.99999)
# Default shrinkage of a worker's confusion matrix towards the population's, in pseudo-answers per
# (answered, true) cell: a fixed number per true class (4, the former default) shrank a worker much less
# with many classes (cf: 5 classes, most workers seen 2-3 times), and the replays with a budget lost
# accuracy there; 3 per cell (6 per class with 2 classes, 15 with 5) is the value the replays support.
STRENGTH_PER_CLASS = 3.0
# The most answers a policy may ask of one item: a job takes at most 50 (``Job.adaptive_max_answers``),
# recorded crowd sets reach about 60; the bound keeps the counts far inside numpy's 64-bit integers.
MAX_ANSWERS_PER_ITEM = 1000


@dataclass(frozen=True)
class RedundancyPolicy:
    """When an item stops collecting answers.  ``max_answers=None`` means no cap but the answers
    that exist (in a replay, the recorded ones)."""

    min_answers: int = 2
    max_answers: int | None = None
    target: float = 0.95

    def __post_init__(self) -> None:
        if self.min_answers < 1:
            raise ValueError("the minimum number of answers must be at least 1")
        if self.min_answers > MAX_ANSWERS_PER_ITEM:
            raise ValueError(f"the minimum number of answers must be at most {MAX_ANSWERS_PER_ITEM}")
        if self.max_answers is not None and self.max_answers < self.min_answers:
            raise ValueError("the maximum number of answers must be at least the minimum")
        if self.max_answers is not None and self.max_answers > MAX_ANSWERS_PER_ITEM:
            raise ValueError(f"the maximum number of answers must be at most {MAX_ANSWERS_PER_ITEM}")
        if not 0.0 < self.target <= 1.0:
            raise ValueError("the target confidence must be in (0, 1]")

    def wants_more(self, n_answers: IntArray, confidence: FloatArray, decided: BoolArray | None = None) -> BoolArray:
        """Per item: should it get another answer (before any cap on what exists)?  ``decided`` marks
        items whose label the answers still to come (up to the maximum) could not change."""
        below_cap = n_answers < self.max_answers if self.max_answers is not None else np.ones_like(n_answers, bool)
        open_ = (confidence < self.target) & below_cap
        if decided is not None:
            open_ &= ~decided
        return np.asarray((n_answers < self.min_answers) | open_, dtype=bool)


class WorkerSkills(NamedTuple):
    """``log_conf[w, l, k] = log P(worker w answers l | true class k)``; row ``n_workers`` (the last)
    is the population's matrix, used for workers without a row of their own."""

    log_conf: FloatArray
    log_prior: FloatArray

    @property
    def n_classes(self) -> int:
        return int(self.log_prior.shape[0])

    @classmethod
    def uninformed(cls, n_workers: int, n_classes: int, accuracy: float = 0.7) -> WorkerSkills:
        """Every worker right with probability ``accuracy``, errors spread evenly; uniform prior.
        The start before anything has been fitted."""
        k = n_classes
        wrong = (1.0 - accuracy) / max(k - 1, 1)
        conf = np.full((k, k), wrong if k > 1 else 1.0)
        np.fill_diagonal(conf, accuracy if k > 1 else 1.0)
        log_conf = np.broadcast_to(np.log(conf), (n_workers + 1, k, k)).copy()
        return cls(log_conf, np.full(k, -np.log(k)))

    def rows(self, worker: IntArray, label: IntArray) -> FloatArray:
        """``(n, K)`` log-likelihood rows ``log P(label | k)`` of the given answers."""
        pop = self.log_conf.shape[0] - 1
        w = np.where((worker >= 0) & (worker < pop), worker, pop)
        return np.asarray(self.log_conf[w, label])


def fit_skills(
    answers: Answers, *, model: str = "ds", strength: float | None = None, fitted: DawidSkene | None = None
) -> WorkerSkills:
    """Worker skills from a full re-fit over ``answers`` (all answers collected so far).

    ``model`` is ``"ds"`` (a confusion matrix per worker) or ``"ods"`` (one accuracy per worker);
    either way the fitted task posteriors give every worker expected counts ``[answered, true]``,
    shrunk towards the population by ``strength`` pseudo-answers (per true class for ``ds``); None:
    :data:`STRENGTH_PER_CLASS` per class pair for ``ds`` (that times the number of classes per true
    class), 4 for ``ods``. ``fitted``: a Dawid-Skene fit of ``answers`` already made (``ds`` only), reused.
    """
    if model not in SKILL_MODELS:
        raise ValueError(f"unknown skill model {model!r}; choose one of {', '.join(SKILL_MODELS)}")
    k = answers.n_classes
    if strength is None:
        strength = STRENGTH_PER_CLASS * k if model == "ds" else 4.0
    if answers.n_answers == 0 or k < 2:
        return WorkerSkills.uninformed(answers.n_workers, k)
    if fitted is not None and model == "ds":
        post = fitted.posterior_
    else:
        post = (DawidSkene() if model == "ds" else OneCoinDawidSkene()).fit(answers).posterior_
    inc = Incidence(answers)
    counts = inc.pair_counts(post)  # [w, answered, true]
    if model == "ods":
        # one accuracy per worker, errors spread evenly; shrunk towards the population's accuracy
        eye = np.eye(k)
        right = np.einsum("wkk->w", counts)
        total = counts.sum(axis=(1, 2))
        pop_acc = (right.sum() + 1.0) / (total.sum() + 2.0)
        acc = np.append((right + strength * pop_acc) / (total + strength), pop_acc)
        conf = acc[:, None, None] * eye + ((1.0 - acc) / (k - 1))[:, None, None] * (1.0 - eye)
    else:
        population = counts.sum(axis=0) + 1.0  # [answered, true], +1 so no answer is impossible
        population /= population.sum(axis=0, keepdims=True)
        smoothed = counts + strength * population[None]
        conf = np.concatenate([smoothed / smoothed.sum(axis=1, keepdims=True), population[None]], axis=0)
    log_conf = np.log(conf)
    return WorkerSkills(log_conf, np.log(class_prior(post, 1.0)))


def evidence_weight(n_answers: IntArray, concentration: float | None) -> FloatArray:
    """Per item, the weight of each of its ``n`` answers' log-likelihood rows: ``f(n) / n`` with
    ``f(n) = c * (digamma(c + n) - digamma(c))`` (the sum of ``c / (c + m)`` for ``m < n``); 1 for items
    without answers or when ``concentration`` is None (independent answers)."""
    n = np.asarray(n_answers, dtype=np.float64)
    if concentration is None:
        return np.ones_like(n)
    from scipy.special import digamma

    c = float(concentration)
    total = c * (digamma(c + n) - digamma(c))
    return np.asarray(np.where(n > 0, total / np.maximum(n, 1.0), 1.0))


class ItemPosteriors:
    """Running posteriors of ``n_items`` items over ``n_classes`` classes; ``concentration`` (see the
    module docstring) discounts agreeing answers to one item, None treats them as independent."""

    def __init__(self, n_items: int, skills: WorkerSkills, *, concentration: float | None = None) -> None:
        if concentration is not None and not concentration > 0:
            raise ValueError("the concentration must be positive")
        self.skills = skills
        self.concentration = concentration
        self.n_answers = np.zeros(n_items, dtype=np.int64)
        self.log_lik = np.zeros((n_items, skills.n_classes))

    def add(self, item: IntArray, worker: IntArray, label: IntArray) -> None:
        """Take in new answers (several may concern the same item)."""
        np.add.at(self.log_lik, item, self.skills.rows(worker, label))
        self.n_answers += np.bincount(item, minlength=self.n_answers.shape[0])

    def rebuild(self, skills: WorkerSkills, item: IntArray, worker: IntArray, label: IntArray) -> None:
        """Start again from ``skills`` (after a re-fit) with every answer so far."""
        self.skills = skills
        self.n_answers[:] = 0
        self.log_lik = np.zeros_like(self.log_lik)
        self.add(item, worker, label)

    def scores(self) -> FloatArray:
        """Unnormalised log posteriors: the prior plus the (discounted) answers' log-likelihoods."""
        weight = evidence_weight(self.n_answers, self.concentration)
        return np.asarray(weight[:, None] * self.log_lik + self.skills.log_prior)

    def posterior(self) -> FloatArray:
        post, _ = softmax_rows(self.scores())
        return post

    def confidence(self) -> FloatArray:
        return np.asarray(self.posterior().max(axis=1))

    def decided(self, remaining: IntArray) -> BoolArray:
        """Items whose leading class stays ahead even if every one of their ``remaining`` answers
        comes from the average worker and is the answer that most favours a rival class (the
        average worker, not the best one: a bound that is cheap and close enough to stop items
        whose majority is already settled, e.g. 3 agreeing answers when at most 5 can come).  With a
        concentration the lead is the discounted one while the answers to come count in full, so the
        test errs towards asking."""
        pop = self.skills.log_conf[-1]  # [answered, true]
        # swing[a, b]: the most one answer can move the log odds from class a towards class b
        swing = (pop[:, None, :] - pop[:, :, None]).max(axis=0)
        score = self.scores()
        lead = score.argmax(axis=1)
        margin = score[np.arange(score.shape[0]), lead][:, None] - score
        ahead = (margin > remaining[:, None] * swing[lead]) | (np.arange(score.shape[1])[None] == lead[:, None])
        return np.asarray(ahead.all(axis=1))

    def flip_probability(self, remaining: IntArray, moments: AnswerMoments | None = None) -> FloatArray:
        """Per item: the probability that its leading class is no longer the leader once ``remaining``
        more answers have come, i.e. that stopping now gives another label than asking up to the cap.

        The true class follows the current posterior; the answers to come are the average worker's
        (the population's matrix), and their summed log-likelihood ratio of the lead ``a`` over a rival
        ``b`` is taken as normal (``r`` answers: mean ``r * E[d | k]``, variance ``r * Var[d | k]``, with
        ``d = log C[l, a] - log C[l, b]``).  With a concentration, all answers then count with the weight
        of ``n + r`` answers.  Rivals are added up (a union bound); items with nothing to come get 0.
        ``moments`` replaces the average worker by another model of the answers to come
        (:func:`mixture_moments`: the job's own workers, each as often as they answer)."""
        from scipy.special import ndtr

        if moments is None:
            moments = mixture_moments(self.skills.log_conf[-1:], np.ones(1))
        mean, var = moments
        rem = np.maximum(np.asarray(remaining, dtype=np.float64), 0.0)
        post = self.posterior()
        lead = post.argmax(axis=1)
        rows = np.arange(post.shape[0])
        final_weight = evidence_weight(self.n_answers + rem.astype(np.int64), self.concentration)
        margin = self.log_lik[rows, lead][:, None] - self.log_lik  # [item, b]
        prior_gap = self.skills.log_prior[lead][:, None] - self.skills.log_prior[None, :]
        threshold = -prior_gap / final_weight[:, None] - margin  # the lead falls when the sum is below
        r = rem[:, None, None]
        z = (threshold[:, :, None] - r * mean[lead]) / np.sqrt(r * var[lead] + 1e-12)
        per_rival = (post[:, None, :] * ndtr(z)).sum(axis=2)  # [item, b]
        per_rival[rows, lead] = 0.0
        per_rival[rem <= 0] = 0.0
        return np.asarray(np.minimum(per_rival.sum(axis=1), 1.0))


class AnswerMoments(NamedTuple):
    """For one answer to come, the mean and variance of ``d = log C[l, a] - log C[l, b]`` (the log odds it
    adds for class ``a`` over ``b``) when the item's true class is ``k``; both indexed ``[a, b, k]``."""

    mean: FloatArray
    var: FloatArray


def mixture_moments(log_conf: FloatArray, share: FloatArray) -> AnswerMoments:
    """:class:`AnswerMoments` of an answer from a worker drawn with probability ``share[w]`` whose matrix is
    ``log_conf[w]`` (``[answered, true]``): each worker's ``d`` is read in their own matrix, as the final
    aggregation reads their answer, then the moments are mixed by ``share``."""
    share = np.asarray(share, dtype=np.float64)
    share = share / share.sum() if share.sum() > 0 else np.full(share.shape, 1.0 / max(share.size, 1))
    conf = np.exp(log_conf)  # [w, answered, true]
    d = log_conf[:, :, :, None] - log_conf[:, :, None, :]  # [w, answered, a, b]
    mean = np.einsum("w,wlk,wlab->abk", share, conf, d)
    second = np.einsum("w,wlk,wlab->abk", share, conf, d**2)
    return AnswerMoments(mean, np.maximum(second - mean**2, 0.0))


class FinalModel(NamedTuple):
    """How the job's final aggregation (Dawid-Skene) reads the answers: its own matrices per worker, without
    the allocation's shrinkage, and a population row mixing them by answer share (for workers it has not
    seen), its class prior; and the moments of an answer to come from the job's workers as they answer."""

    skills: WorkerSkills
    moments: AnswerMoments


def final_model(fitted: DawidSkene, answers: Answers) -> FinalModel:
    """The :class:`FinalModel` of a Dawid-Skene fit on ``answers``."""
    conf = fitted.confusion_.transpose(0, 2, 1)  # [w, answered, true]
    share = np.bincount(answers.worker, minlength=answers.n_workers).astype(np.float64)
    if share.sum() == 0:
        share[:] = 1.0
    share /= share.sum()
    population = np.einsum("w,wlk->lk", share, conf)
    log_conf = np.log(np.concatenate([conf, population[None]], axis=0))
    skills = WorkerSkills(log_conf, np.log(fitted.class_prior_))
    return FinalModel(skills, mixture_moments(log_conf[:-1], share))


def settledness(
    allocation: ItemPosteriors, remaining: IntArray, final: tuple[ItemPosteriors, FinalModel] | None
) -> FloatArray:
    """Per item, the confidence that the answers still to come (``remaining``) would not change its label:
    ``1 - flip_probability`` of the allocation's posteriors, and with ``final`` (the final aggregation's
    posteriors of the same answers, and its model) ``1 -`` the sum of the two flip probabilities (a union
    bound: the chance that either reading's label changes), so an item is settled only when neither model
    expects its label to change."""
    flip = allocation.flip_probability(remaining)
    if final is not None:
        state, model = final
        flip = np.minimum(flip + state.flip_probability(remaining, model.moments), 1.0)
    return np.asarray(1.0 - flip)


def expected_gain(posterior: FloatArray, skills: WorkerSkills) -> FloatArray:
    """Per item: how much one more answer from the average worker raises the expected top posterior.

    With ``p[k]`` the item's posterior and ``C[l, k] = P(answer l | true k)`` the population's matrix,
    answer ``l`` arrives with probability ``sum_k p[k] C[l, k]`` and leaves the top posterior at
    ``max_k p[k] C[l, k] / P(l)``, so the expected top posterior after the answer is
    ``sum_l max_k p[k] C[l, k]``. The gain is that minus ``max_k p[k]`` (never negative: a max of sums
    is at most the sum of maxes). Budget-aware allocation gives the extra answers to the largest gains.
    """
    pop = np.exp(skills.log_conf[-1])  # [answered, true]
    joint = posterior[:, None, :] * pop[None, :, :]  # [item, answered, true]
    after = joint.max(axis=2).sum(axis=1)
    return np.asarray(np.maximum(after - posterior.max(axis=1), 0.0))


def neediest(settled: FloatArray, wants: BoolArray, target: float) -> BoolArray:
    """Of the items that ``wants`` another answer, those a short budget should pay first: the ones below
    the lowest confidence step that some wanting item has not reached (the steps are
    :data:`CONFIDENCE_STEPS` below ``target``, then ``target``). ``settled`` is each item's confidence
    that its label will not change (``1 - flip_probability``). Rank the result by :func:`expected_gain`
    when the budget cannot pay for all of it."""
    return below_step(settled, wants, neediest_step(settled, wants, target))


def below_step(settled: FloatArray, wants: BoolArray, step: float | None) -> BoolArray:
    """The items of ``wants`` less settled than ``step`` (all of them when ``step`` is None)."""
    wants = np.asarray(wants, dtype=bool)
    if step is None:
        return wants
    return np.asarray(wants & (np.asarray(settled, dtype=np.float64) < step))


def neediest_step(settled: FloatArray, wants: BoolArray, target: float) -> float | None:
    """The confidence step :func:`neediest` serves: the lowest step (:data:`CONFIDENCE_STEPS` below
    ``target``, then ``target``) above the least settled wanting item; None when no item wants an answer
    or the wanting ones are all at the target already (still short of the minimum)."""
    wants = np.asarray(wants, dtype=bool)
    if not wants.any():
        return None
    steps = [s for s in CONFIDENCE_STEPS if s < target] + [target]
    lowest = float(np.asarray(settled, dtype=np.float64)[wants].min())
    return next((s for s in steps if s > lowest), None)


def subset(answers: Answers, mask: BoolArray) -> Answers:
    """The answers selected by ``mask``, with the same task, worker and class codes."""
    return replace(answers, task=answers.task[mask], worker=answers.worker[mask], label=answers.label[mask])
