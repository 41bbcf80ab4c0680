"""Adaptive redundancy: the policy, the skills it uses, the running posteriors and the replay."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.aggregation.adaptive import (
    ItemPosteriors,
    RedundancyPolicy,
    WorkerSkills,
    evidence_weight,
    expected_gain,
    fit_skills,
    subset,
)
from tasks.aggregation.base import Answers, Gold
from tasks.aggregation.io import read_answers_csv, read_gold_csv
from tasks.aggregation.replay import DEFAULT_TARGET, arrival_rank, replay
from tests.tasks.aggregation.test_aggregators import DATA, frame, needs_data


def synthetic(n_tasks: int, n_answers: int, seed: int = 0, accuracy: float = 0.85) -> tuple[Answers, np.ndarray]:
    """Binary tasks, ``n_answers`` workers per task out of 8, each right with ``accuracy``."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n_tasks)
    rows = []
    for i, y in enumerate(truth):
        for w in rng.choice(8, n_answers, replace=False):
            rows.append((f"t{i:04d}", f"w{w}", str(y if rng.random() < accuracy else 1 - y)))
    return Answers.from_frame(frame(rows)), truth


def real_set(name: str) -> tuple[Answers, Gold]:
    """One dataset of ``../shared/data/crowd``: its answers and its gold, coded alike."""
    gold_labels = read_gold_csv(DATA / name / "gold.csv")
    answers = read_answers_csv(DATA / name / "answers.csv", extra_labels=list(gold_labels.values()))
    return answers, answers.encode_gold(gold_labels)


def gold_of(answers: Answers, truth: np.ndarray) -> dict[str, str]:
    return {str(name): str(truth[int(str(name)[1:])]) for name in answers.task_names}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_answers": 0}, "minimum"),
        ({"min_answers": 3, "max_answers": 2}, "maximum"),
        ({"target": 0.0}, "target"),
        ({"target": 1.5}, "target"),
    ],
)
def test_a_policy_rejects_impossible_settings(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RedundancyPolicy(**kwargs)  # type: ignore[arg-type]


def test_an_item_wants_more_until_the_minimum_then_until_confident_or_capped() -> None:
    policy = RedundancyPolicy(min_answers=2, max_answers=4, target=0.9)
    n = np.array([1, 2, 2, 4, 3])
    conf = np.array([0.99, 0.95, 0.6, 0.6, 0.6])
    decided = np.array([False, False, False, False, True])
    assert policy.wants_more(n, conf).tolist() == [True, False, True, False, True]
    assert policy.wants_more(n, conf, decided).tolist() == [True, False, True, False, False]


def test_without_a_maximum_only_confidence_stops_an_item() -> None:
    policy = RedundancyPolicy(min_answers=1, target=0.9)
    assert policy.wants_more(np.array([50, 50]), np.array([0.5, 0.95])).tolist() == [True, False]


def test_unknown_workers_get_the_population_row() -> None:
    skills = WorkerSkills.uninformed(n_workers=2, n_classes=3, accuracy=0.7)
    rows = skills.rows(np.array([0, 5, -1]), np.array([1, 1, 1]))
    np.testing.assert_allclose(np.exp(rows[0]), [0.15, 0.7, 0.15])
    np.testing.assert_allclose(rows[1], rows[0])
    np.testing.assert_allclose(rows[2], rows[0])


@pytest.mark.parametrize("model", ["ds", "ods"])
def test_fitted_skills_rank_a_careful_worker_above_a_coin_flipper(model: str) -> None:
    rng = np.random.default_rng(1)
    rows = []
    for i, y in enumerate(rng.integers(0, 2, 300)):
        rows += [(f"t{i}", w, str(y if rng.random() < 0.9 else 1 - y)) for w in ("a", "b", "c")]
        rows.append((f"t{i}", "coin", str(rng.integers(0, 2))))
    answers = Answers.from_frame(frame(rows))
    skills = fit_skills(answers, model=model)
    conf = np.exp(skills.log_conf)  # [worker, answered, true]
    np.testing.assert_allclose(conf.sum(axis=1), 1.0)
    position = {str(w): i for i, w in enumerate(answers.worker_names)}
    careful, coin = np.einsum("wkk->w", conf)[[position["a"], position["coin"]]] / 2
    assert careful > 0.85
    assert 0.4 < coin < 0.6
    assert skills.log_conf.shape[0] == answers.n_workers + 1  # the population's row last


def test_fit_skills_rejects_an_unknown_model() -> None:
    answers, _ = synthetic(5, 3)
    with pytest.raises(ValueError, match="skill model"):
        fit_skills(answers, model="glad")


def test_incremental_posteriors_match_a_rebuild_in_any_order() -> None:
    answers, _ = synthetic(40, 5)
    skills = fit_skills(answers)
    one_by_one = ItemPosteriors(answers.n_tasks, skills)
    for i in np.random.default_rng(2).permutation(answers.n_answers):
        one_by_one.add(answers.task[i : i + 1], answers.worker[i : i + 1], answers.label[i : i + 1])
    at_once = ItemPosteriors(answers.n_tasks, WorkerSkills.uninformed(answers.n_workers, 2))
    at_once.rebuild(skills, answers.task, answers.worker, answers.label)
    np.testing.assert_allclose(one_by_one.posterior(), at_once.posterior())
    assert one_by_one.n_answers.tolist() == np.bincount(answers.task).tolist()


def test_an_item_is_decided_when_the_remaining_answers_cannot_overturn_it() -> None:
    skills = WorkerSkills.uninformed(n_workers=5, n_classes=2, accuracy=0.8)
    state = ItemPosteriors(2, skills)
    # item 0: three answers for class 1; item 1: two for class 1 and one for class 0
    state.add(np.array([0, 0, 0, 1, 1, 1]), np.array([0, 1, 2, 0, 1, 2]), np.array([1, 1, 1, 1, 1, 0]))
    assert state.decided(np.array([2, 2])).tolist() == [True, False]
    assert state.decided(np.array([3, 0])).tolist() == [False, True]


def test_the_evidence_of_n_answers_to_one_item_grows_like_a_polya_urn() -> None:
    n = np.arange(0, 101)
    np.testing.assert_allclose(evidence_weight(n, None), 1.0)
    weight = evidence_weight(n, 4.0)
    total = weight * n
    # answer m + 1 carries c / (c + m) of an independent answer: 1, 0.8, 0.667, ...
    np.testing.assert_allclose(total[:4], [0.0, 1.0, 1.8, 1.8 + 4 / 6])
    np.testing.assert_allclose(total[1:], np.cumsum(4.0 / (4.0 + np.arange(100))))
    assert weight[0] == 1.0 and (np.diff(weight[1:]) < 0).all() and (np.diff(total) > 0).all()
    assert total[100] < 14  # about c * log(n), not n


def test_agreeing_answers_count_for_less_with_a_concentration() -> None:
    skills = WorkerSkills.uninformed(n_workers=5, n_classes=2, accuracy=0.8)
    independent = ItemPosteriors(3, skills)
    discounted = ItemPosteriors(3, skills, concentration=4.0)
    # item 0: one answer for class 1; item 1: three; item 2: five
    item = np.array([0, 1, 1, 1, 2, 2, 2, 2, 2])
    worker = np.array([0, 0, 1, 2, 0, 1, 2, 3, 4])
    for state in (independent, discounted):
        state.add(item, worker, np.ones(9, dtype=np.int64))
    plain, shrunk = independent.confidence(), discounted.confidence()
    assert plain[0] == pytest.approx(shrunk[0]) == pytest.approx(0.8)
    assert plain[1] == pytest.approx(64 / 65)  # odds 4 ** 3
    assert shrunk[1] == pytest.approx(1 / (1 + np.exp(-(1 + 0.8 + 4 / 6) * np.log(4))))  # 0.968, below 0.99
    assert shrunk[1] < 0.97 < plain[1] and shrunk[1] < shrunk[2] < plain[2]


def test_a_discounted_lead_is_not_decided_while_full_answers_could_overturn_it() -> None:
    skills = WorkerSkills.uninformed(n_workers=5, n_classes=2, accuracy=0.8)
    independent = ItemPosteriors(1, skills)
    skeptical = ItemPosteriors(1, skills, concentration=1.0)
    for state in (independent, skeptical):
        state.add(np.zeros(3, dtype=np.int64), np.arange(3), np.ones(3, dtype=np.int64))
    # three agreeing answers lead by 3 log 4; two rival answers swing at most 2 log 4
    assert independent.decided(np.array([2])).tolist() == [True]
    # with c = 1 the three count as 1 + 1/2 + 1/3 answers: less than the two still to come
    assert skeptical.decided(np.array([2])).tolist() == [False]
    assert skeptical.decided(np.array([1])).tolist() == [True]


def test_the_flip_probability_grows_with_the_answers_still_to_come() -> None:
    skills = WorkerSkills.uninformed(n_workers=5, n_classes=2, accuracy=0.8)
    for concentration in (None, 4.0):
        state = ItemPosteriors(4, skills, concentration=concentration)
        # three agreeing answers for class 1 on every item
        state.add(np.repeat(np.arange(4), 3), np.tile(np.arange(3), 4), np.ones(12, dtype=np.int64))
        flip = state.flip_probability(np.array([0, 1, 5, 60]))
        rival = 1.0 - state.confidence()[0]
        assert flip[0] == 0.0  # nothing to come, nothing changes
        assert flip[1] < 1e-3  # one answer cannot undo three
        assert flip[1] < flip[2] < flip[3]
        # sixty answers from the average worker reveal the class: the label changes when the rival is true
        assert flip[3] == pytest.approx(rival, rel=0.05)


def test_a_lead_is_less_settled_when_agreeing_answers_are_discounted() -> None:
    skills = WorkerSkills.uninformed(n_workers=5, n_classes=3, accuracy=0.8)
    plain = ItemPosteriors(1, skills)
    discounted = ItemPosteriors(1, skills, concentration=4.0)
    for state in (plain, discounted):
        state.add(np.zeros(4, dtype=np.int64), np.arange(4), np.array([2, 2, 2, 0]))
    remaining = np.array([6])
    assert 0.0 < plain.flip_probability(remaining)[0] < discounted.flip_probability(remaining)[0] < 0.5


def test_a_concentration_must_be_positive() -> None:
    with pytest.raises(ValueError, match="concentration"):
        ItemPosteriors(2, WorkerSkills.uninformed(2, 2), concentration=0.0)


def test_arrival_order_is_a_seeded_permutation_within_every_task() -> None:
    answers, _ = synthetic(30, 6)
    rank = arrival_rank(answers, seed=3)
    for t in range(answers.n_tasks):
        assert sorted(rank[answers.task == t].tolist()) == list(range(6))
    assert (arrival_rank(answers, seed=3) == rank).all()
    assert (arrival_rank(answers, seed=4) != rank).any()


def test_fixed_replay_takes_the_first_max_answers_of_every_item() -> None:
    answers, truth = synthetic(60, 6)
    gold = answers.encode_gold(gold_of(answers, truth))
    everything = replay(answers, gold, policy="fixed", redundancy=RedundancyPolicy(), seed=0)
    three = replay(answers, gold, policy="fixed", redundancy=RedundancyPolicy(max_answers=3), seed=0)
    assert everything.answers_used == answers.n_answers == 360
    assert three.answers_used == 180
    assert everything.accuracy >= three.accuracy


def test_adaptive_replay_saves_answers_on_an_easy_job_without_losing_accuracy() -> None:
    answers, truth = synthetic(300, 7, accuracy=0.9)
    gold = answers.encode_gold(gold_of(answers, truth))
    fixed = replay(answers, gold, policy="fixed", redundancy=RedundancyPolicy(), seed=5)
    adaptive = replay(answers, gold, policy="adaptive", redundancy=RedundancyPolicy(target=0.99), seed=5)
    assert adaptive.answers_used < 0.6 * fixed.answers_used
    assert adaptive.accuracy >= fixed.accuracy - 0.01
    assert adaptive.refits >= 2


def test_adaptive_replay_respects_the_minimum_and_the_maximum() -> None:
    answers, truth = synthetic(100, 8, accuracy=0.6)
    gold = answers.encode_gold(gold_of(answers, truth))
    policy = RedundancyPolicy(min_answers=3, max_answers=5, target=0.999)
    result = replay(answers, gold, policy="adaptive", redundancy=policy, seed=1)
    assert 300 <= result.answers_used <= 500
    assert result.answers_used < 500  # a few items are settled before their fifth answer


def test_a_replay_needs_gold_and_known_names() -> None:
    answers, _ = synthetic(10, 3)
    with pytest.raises(ValueError, match="gold"):
        replay(answers, answers.encode_gold({}), policy="adaptive", redundancy=RedundancyPolicy())
    gold = answers.encode_gold({"t0000": "1"})
    with pytest.raises(ValueError, match="policy"):
        replay(answers, gold, policy="sometimes", redundancy=RedundancyPolicy())
    with pytest.raises(ValueError, match="method"):
        replay(answers, gold, policy="fixed", redundancy=RedundancyPolicy(), method="best")


def test_subset_keeps_the_codes() -> None:
    answers, _ = synthetic(10, 3)
    part = subset(answers, answers.task < 5)
    assert part.n_tasks == answers.n_tasks and part.n_workers == answers.n_workers
    assert part.n_answers == 15


@needs_data
@pytest.mark.parametrize("name", ["wsd", "temp"])
def test_adaptive_replay_on_a_small_real_set(name: str) -> None:
    answers, gold = real_set(name)
    fixed = replay(answers, gold, policy="fixed", redundancy=RedundancyPolicy(), seed=0)
    adaptive = replay(answers, gold, policy="adaptive", redundancy=RedundancyPolicy(target=0.99), seed=0)
    assert adaptive.answers_used < 0.7 * fixed.answers_used
    assert adaptive.accuracy >= fixed.accuracy - 0.01


@needs_data
@pytest.mark.parametrize("name", ["cf_amt", "sentiment"])
def test_discounting_agreement_keeps_the_accuracy_of_full_redundancy(name: str) -> None:
    """20 answers per item: independent answers stop ambiguous items after 3-5 agreeing answers and
    lose 1-3 points against all 20 answers; the default discount stays within half a point."""
    answers, gold = real_set(name)
    policy = RedundancyPolicy(target=DEFAULT_TARGET)
    fixed = replay(answers, gold, policy="fixed", redundancy=policy, seed=0)
    adaptive = replay(answers, gold, policy="adaptive", redundancy=policy, seed=0)
    independent = replay(answers, gold, policy="adaptive", redundancy=policy, seed=0, concentration=None)
    assert adaptive.concentration == 4.0
    assert adaptive.accuracy >= fixed.accuracy - 0.005
    assert adaptive.answers_used <= 0.7 * fixed.answers_used
    assert independent.accuracy < fixed.accuracy - 0.005  # the failure the discount fixes


def test_expected_gain_is_largest_where_one_answer_can_change_the_most() -> None:
    skills = WorkerSkills.uninformed(0, 2, accuracy=0.7)
    post = np.array([[0.5, 0.5], [0.6, 0.4], [0.9, 0.1], [1.0, 0.0]])
    gain = expected_gain(post, skills)
    # uniform: either answer leaves 0.7 on top; 0.6/0.4: 0.42 + 0.28 = 0.70; 0.9 cannot be overturned
    np.testing.assert_allclose(gain, [0.2, 0.1, 0.0, 0.0], atol=1e-12)
    assert list(np.argsort(-gain, kind="stable")) == [0, 1, 2, 3]


def test_expected_gain_matches_bayes_over_every_possible_answer() -> None:
    rng = np.random.default_rng(3)
    skills = fit_skills(synthetic(40, 3, seed=3)[0])
    k = skills.n_classes
    post = rng.dirichlet(np.ones(k), size=5)
    conf = np.exp(skills.log_conf[-1])  # [answered, true]
    for p, gain in zip(post, expected_gain(post, skills), strict=True):
        expected = 0.0
        for answer in range(k):
            joint = p * conf[answer]
            expected += joint.sum() * (joint / joint.sum()).max()
        assert gain == pytest.approx(expected - p.max())
