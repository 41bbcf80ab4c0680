"""With a short budget an item is settled only when the final Dawid-Skene aggregation agrees: its own
matrices (no shrinkage), and answers to come drawn from the job's workers as often as they answer."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.aggregation.adaptive import (
    FinalModel,
    ItemPosteriors,
    WorkerSkills,
    final_model,
    mixture_moments,
    settledness,
)
from tasks.aggregation.base import Answers
from tasks.aggregation.dawid_skene import DawidSkene
from tests.tasks.aggregation.test_adaptive import synthetic
from tests.tasks.aggregation.test_aggregators import frame


def _matrix(accuracy: float) -> np.ndarray:
    """A binary ``[answered, true]`` matrix right with ``accuracy``."""
    return np.array([[accuracy, 1 - accuracy], [1 - accuracy, accuracy]])


def test_one_worker_moments_are_the_average_worker_the_flip_probability_uses() -> None:
    skills = WorkerSkills.uninformed(3, 3, accuracy=0.8)
    state = ItemPosteriors(4, skills, concentration=4.0)
    state.add(np.array([0, 0, 1, 2, 2, 2]), np.array([0, 1, 0, 0, 1, 2]), np.array([0, 0, 1, 2, 2, 1]))
    remaining = np.array([3, 3, 4, 2])
    own = mixture_moments(skills.log_conf[-1:], np.ones(1))
    np.testing.assert_allclose(state.flip_probability(remaining), state.flip_probability(remaining, own))


def test_mixed_moments_weight_each_worker_by_their_share_of_answers() -> None:
    log_conf = np.log(np.stack([_matrix(0.95), _matrix(0.5)]))
    good = mixture_moments(log_conf[:1], np.ones(1))
    coin = mixture_moments(log_conf[1:], np.ones(1))
    mixed = mixture_moments(log_conf, np.array([3.0, 1.0]))  # shares need not sum to one
    # a coin-flipping worker's answers move nothing; three quarters of the answers from the good worker
    np.testing.assert_allclose(coin.mean, 0.0, atol=1e-12)
    np.testing.assert_allclose(mixed.mean, 0.75 * good.mean)
    # the evidence for the true class is positive on average: a = true class, b = the other
    assert good.mean[0, 1, 0] > 0 and good.mean[1, 0, 1] > 0
    assert (mixed.var >= 0).all()


def test_the_final_model_is_the_fits_own_matrices_and_the_workers_answer_shares() -> None:
    answers, _ = synthetic(60, 3, seed=4)
    fitted = DawidSkene().fit(answers)
    model = final_model(fitted, answers)
    conf = np.exp(model.skills.log_conf)
    np.testing.assert_allclose(conf[:-1], fitted.confusion_.transpose(0, 2, 1))
    share = np.bincount(answers.worker, minlength=answers.n_workers) / answers.n_answers
    np.testing.assert_allclose(conf[-1], np.einsum("w,wlk->lk", share, conf[:-1]))
    np.testing.assert_allclose(np.exp(model.skills.log_prior), fitted.class_prior_)
    np.testing.assert_allclose(model.moments.mean, mixture_moments(model.skills.log_conf[:-1], share).mean)


def _state(accuracy: float, answers: int) -> tuple[ItemPosteriors, np.ndarray]:
    """One item with ``answers`` agreeing answers from a worker right with ``accuracy``; 6 more may come."""
    skills = WorkerSkills(np.log(np.stack([_matrix(accuracy), _matrix(accuracy)])), np.log(np.full(2, 0.5)))
    state = ItemPosteriors(1, skills)
    state.add(np.zeros(answers, dtype=np.int64), np.zeros(answers, dtype=np.int64), np.zeros(answers, dtype=np.int64))
    return state, np.array([6])


def test_an_item_is_settled_only_when_the_final_aggregation_agrees_too() -> None:
    # the allocation trusts the worker (0.9): two agreeing answers nearly settle the item ...
    allocation, remaining = _state(0.9, 2)
    alone = settledness(allocation, remaining, None)
    # ... but the final fit reads the same worker as barely better than a coin, so the label is still open
    doubtful, _ = _state(0.6, 2)
    model = FinalModel(doubtful.skills, mixture_moments(doubtful.skills.log_conf[:-1], np.ones(1)))
    both = settledness(allocation, remaining, (doubtful, model))
    assert both[0] < alone[0]
    doubt = doubtful.flip_probability(remaining, model.moments)[0]
    assert both[0] == pytest.approx(alone[0] - doubt)  # either reading may change: the doubts add up
    # a final fit surer than the allocation adds little to the allocation's own doubt
    sure, _ = _state(0.99, 2)
    surer = FinalModel(sure.skills, mixture_moments(sure.skills.log_conf[:-1], np.ones(1)))
    assert alone[0] - settledness(allocation, remaining, (sure, surer))[0] < 0.1 * (1.0 - alone[0])
    # an unanswered item read by coin-flipping workers is a toss-up under both readings: not settled at all
    coin, _ = _state(0.5, 0)
    flat = FinalModel(coin.skills, mixture_moments(coin.skills.log_conf[:-1], np.ones(1)))
    assert settledness(coin, remaining, (coin, flat))[0] == pytest.approx(0.0)


def test_nothing_left_to_come_is_settled_under_both_models() -> None:
    allocation, _ = _state(0.9, 1)
    doubtful, _ = _state(0.55, 1)
    model = FinalModel(doubtful.skills, mixture_moments(doubtful.skills.log_conf[:-1], np.ones(1)))
    assert settledness(allocation, np.array([0]), (doubtful, model))[0] == 1.0


def test_workers_the_final_fit_never_saw_read_as_the_mixture() -> None:
    rows = [("t1", "a", "x"), ("t1", "b", "x"), ("t2", "a", "y"), ("t2", "b", "y"), ("t3", "a", "x")]
    answers = Answers.from_frame(frame(rows))
    model = final_model(DawidSkene().fit(answers), answers)
    row = model.skills.rows(np.array([-1, 99]), np.array([0, 1]))
    np.testing.assert_allclose(row[0], model.skills.log_conf[-1, 0])
    np.testing.assert_allclose(row[1], model.skills.log_conf[-1, 1])
