"""The pure worker-scoring functions: Beta-smoothed gold accuracy and the sequential block test."""

from __future__ import annotations

import math

import numpy as np
import pytest

from workforce.scoring import (
    BLOCK_ODDS,
    CLEAR_ODDS,
    DEPENDENCE_BLOCK_ODDS,
    chance_accuracy,
    dependence_log_ratio,
    floor_kappa,
    gold_accuracy,
    gold_evidence,
    gold_hand_out_rate,
    label_mix,
    spam_log_likelihood_ratio,
)


def test_one_right_answer_out_of_one_is_not_a_perfect_accuracy():
    accuracy = gold_accuracy(1, 1)
    assert 0 < accuracy.low < accuracy.mean < accuracy.high < 1


def test_chance_accuracy_is_one_over_the_number_of_labels():
    assert chance_accuracy(4) == 0.25
    assert chance_accuracy(1) == 0.5  # a one-label job is treated as a yes/no question


def test_the_log_likelihood_ratio_grows_with_wrong_answers_and_falls_with_right_ones():
    llr = spam_log_likelihood_ratio(np.array([0.0, 1.0, 5.0]), np.array([5.0, 5.0, 5.0]), chance=0.25, floor=0.6)
    assert llr[0] == pytest.approx(5 * math.log(0.75 / 0.4))
    assert llr[0] > llr[1] > 0 > llr[2]


def test_the_log_likelihood_ratio_takes_partial_credit():
    whole = spam_log_likelihood_ratio(np.array([1.0]), np.array([2.0]), chance=0.25, floor=0.6)
    halves = spam_log_likelihood_ratio(np.array([0.5 + 0.5]), np.array([2.0]), chance=0.25, floor=0.6)
    assert whole[0] == pytest.approx(halves[0])


@pytest.mark.parametrize(("chance", "floor"), [(0.25, 0.25), (0.5, 0.4), (0.0, 0.5), (0.25, 1.0)])
def test_the_log_likelihood_ratio_needs_a_floor_above_chance(chance, floor):
    with pytest.raises(ValueError):
        spam_log_likelihood_ratio(np.array([1.0]), np.array([2.0]), chance=chance, floor=floor)


def test_the_log_likelihood_ratio_refuses_impossible_counts():
    with pytest.raises(ValueError):
        spam_log_likelihood_ratio(np.array([3.0]), np.array([2.0]), chance=0.25, floor=0.6)


def test_a_worker_at_chance_is_blocked_once_the_odds_are_reached():
    # 4 labels, floor 60%: each wrong answer multiplies the odds for "at chance" by 0.75 / 0.4.
    wrongs_needed = math.ceil(math.log(BLOCK_ODDS) / math.log(0.75 / 0.4))
    before = gold_evidence(0, wrongs_needed - 1, n_labels=4, floor=0.6)
    after = gold_evidence(0, wrongs_needed, n_labels=4, floor=0.6)
    assert (before.decision, after.decision) == ("undecided", "block")
    assert after.log_ratio >= math.log(BLOCK_ODDS) > before.log_ratio


def test_no_block_before_the_minimum_number_of_gold_answers():
    assert gold_evidence(0, 6, n_labels=4, floor=0.6, min_gold=7).decision == "undecided"
    assert gold_evidence(0, 7, n_labels=4, floor=0.6, min_gold=7).decision == "block"


def test_a_mostly_right_worker_is_cleared_and_a_middling_one_stays_undecided():
    cleared = gold_evidence(9, 10, n_labels=4, floor=0.6)
    assert cleared.decision == "clear" and cleared.log_ratio <= -math.log(CLEAR_ODDS)
    assert gold_evidence(4, 10, n_labels=4, floor=0.6).decision == "undecided"


def test_an_honest_noisy_worker_is_rarely_blocked_while_a_spammer_usually_is_within_ten_answers():
    rng = np.random.default_rng(0)

    def blocked_within(p: float, answers: int) -> float:
        hits = 0
        for _ in range(2000):
            right = np.cumsum(rng.random(answers) < p)
            hits += any(
                gold_evidence(float(right[i]), i + 1, n_labels=4, floor=0.6, min_gold=4).decision == "block"
                for i in range(answers)
            )
        return hits / 2000

    assert blocked_within(0.25, 10) > 0.6
    assert blocked_within(0.7, 30) < 0.01


def test_without_a_floor_or_with_a_floor_at_chance_the_test_never_decides():
    assert gold_evidence(0, 50, n_labels=4, floor=None).decision == "undecided"
    assert gold_evidence(0, 50, n_labels=2, floor=0.5).decision == "undecided"


@pytest.mark.parametrize(
    ("boost_until", "gold_answers", "decision", "rate"),
    [
        (0, 0, "undecided", 0.1),  # boost off
        (40, 3, "undecided", 0.7),
        (40, 3, "clear", 0.1),
        (40, 3, "block", 0.1),
        (40, 40, "undecided", 0.1),  # boost spent
    ],
)
def test_gold_is_boosted_only_while_the_worker_is_undecided(boost_until, gold_answers, decision, rate):
    assert (
        gold_hand_out_rate(
            base_rate=0.1, boost_rate=0.7, boost_until=boost_until, gold_answers=gold_answers, decision=decision
        )
        == rate
    )


def test_a_boost_rate_below_the_base_rate_never_lowers_it():
    assert (
        gold_hand_out_rate(base_rate=0.3, boost_rate=0.1, boost_until=10, gold_answers=0, decision="undecided") == 0.3
    )


def test_speed_signal_gives_each_workers_median_and_share_of_too_fast_tasks() -> None:
    import numpy as np

    from workforce.scoring import speed_signal

    codes = np.array([0, 0, 0, 1, 1, 1, 1], dtype=np.int64)
    seconds = np.array([10.0, 12.0, 14.0, 1.0, 1.0, 11.0, 30.0])
    medians, fast, job_median = speed_signal(codes, seconds, 3)
    assert job_median == 11.0
    assert medians[0] == 12.0 and medians[1] == 6.0 and np.isnan(medians[2])
    assert fast[0] == 0.0 and fast[1] == 0.5 and np.isnan(fast[2])


def test_floor_kappa_is_zero_at_chance_and_one_when_always_right() -> None:
    assert floor_kappa(0.25, 4) == 0.0
    assert floor_kappa(1.0, 4) == 1.0
    assert floor_kappa(0.6, 4) == pytest.approx((2.4 - 1) / 3)
    assert floor_kappa(0.1, 4) == 0.0  # below chance is no reliability, not negative


def test_label_mix_smooths_with_one_pseudo_answer_per_label() -> None:
    mix = label_mix({"a": 6.0}, ["a", "b", "c", "d"])
    assert mix == {"a": 0.7, "b": 0.1, "c": 0.1, "d": 0.1}
    assert sum(mix.values()) == pytest.approx(1.0)


def _answers(matched: list[float], chance: list[float]) -> tuple[np.ndarray, np.ndarray]:
    return np.array(matched, dtype=float), np.array(chance, dtype=float)


def test_dependence_evidence_points_to_spam_at_chance_and_away_from_it_for_a_reliable_worker() -> None:
    # 20 gold answers whose chance of matching from the worker's label mix is 0.25 each.
    at_chance = dependence_log_ratio(*_answers([1.0] * 5 + [0.0] * 15, [0.25] * 20), kappa=0.47)
    reliable = dependence_log_ratio(*_answers([1.0] * 18 + [0.0] * 2, [0.25] * 20), kappa=0.47)
    assert at_chance > np.log(DEPENDENCE_BLOCK_ODDS) and reliable < -np.log(DEPENDENCE_BLOCK_ODDS)
    # Each answer is weighed with its own chance: the order does not matter, a fractional match (the
    # share of peers matched) is allowed, and answers with a chance of 0 or 1 weigh nothing.
    assert dependence_log_ratio(*_answers([0.0, 1.0], [0.25, 0.25]), kappa=0.47) == pytest.approx(
        dependence_log_ratio(*_answers([1.0, 0.0], [0.25, 0.25]), kappa=0.47)
    )
    halves = dependence_log_ratio(*_answers([0.5, 0.5], [0.25, 0.25]), kappa=0.47)
    assert halves == pytest.approx(dependence_log_ratio(*_answers([1.0, 0.0], [0.25, 0.25]), kappa=0.47))
    assert dependence_log_ratio(*_answers([1.0, 0.0], [0.0, 1.0]), kappa=0.47) == 0.0
    assert dependence_log_ratio(*_answers([], []), kappa=0.47) == 0.0
    assert dependence_log_ratio(*_answers([0.0], [0.25]), kappa=0.0) == 0.0


def test_a_right_answer_in_the_label_a_worker_always_gives_is_no_evidence_of_care() -> None:
    # A worker who always answers "a" (90% of their label mix; 1/30 for each other label) meets gold
    # answers a, a, b, c, d: right twice, but only because the gold answer was their label.
    kappa = floor_kappa(0.6, 4)
    constant = dependence_log_ratio(*_answers([1, 1, 0, 0, 0], [0.9, 0.9, 1 / 30, 1 / 30, 1 / 30]), kappa=kappa)
    # A wrong answer counts 1 / (1 - kappa) whatever its chance; a right one at 90% chance almost nothing.
    right = dependence_log_ratio(*_answers([1], [0.9]), kappa=kappa)
    assert dependence_log_ratio(*_answers([0], [1 / 30]), kappa=kappa) == pytest.approx(-math.log(1 - kappa))
    assert -0.1 < right < 0
    assert constant == pytest.approx(2 * right - 3 * math.log(1 - kappa))
    # Two right out of five from a worker answering uniformly (chance 0.25 each) is much weaker evidence.
    uniform = dependence_log_ratio(*_answers([1, 1, 0, 0, 0], [0.25] * 5), kappa=kappa)
    assert uniform < 0.5 < constant


def test_dependence_evidence_refuses_mismatched_or_impossible_answers() -> None:
    with pytest.raises(ValueError):
        dependence_log_ratio(*_answers([1.0, 0.0], [0.25]), kappa=0.47)
    with pytest.raises(ValueError):
        dependence_log_ratio(*_answers([1.5], [0.25]), kappa=0.47)


def test_a_worker_at_the_floor_is_blocked_in_at_most_one_run_in_the_block_odds() -> None:
    # Ville's inequality: under "the worker is at the floor" the likelihood ratio is a martingale, so it
    # ever reaches the block odds with probability at most 1/odds, however long the worker works. 4000
    # workers exactly at the floor give 100 answers each (chances between 0.1 and 0.5), and a spammer
    # population answering at chance the same way is blocked within 40 answers nearly always.
    rng = np.random.default_rng(3)
    kappa = floor_kappa(0.6, 4)
    runs, answers = 4000, 100
    chance = rng.uniform(0.1, 0.5, size=(runs, answers))
    at_floor = rng.random((runs, answers)) < chance + (1 - chance) * kappa
    at_chance = rng.random((runs, answers)) < chance

    def ever_blocked(matched: np.ndarray, within: int) -> float:
        rate0, hit = chance[:, :within], matched[:, :within].astype(float)
        rate1 = rate0 + (1 - rate0) * kappa
        per_answer = hit * np.log(rate0 / rate1) + (1 - hit) * np.log((1 - rate0) / (1 - rate1))
        for row in range(0, runs, 400):  # the same sums as the function's
            assert per_answer[row].sum() == pytest.approx(dependence_log_ratio(hit[row], rate0[row], kappa=kappa))
        return float(np.mean(np.cumsum(per_answer, axis=1).max(axis=1) >= math.log(DEPENDENCE_BLOCK_ODDS)))

    assert ever_blocked(at_floor, answers) <= 1 / DEPENDENCE_BLOCK_ODDS
    assert ever_blocked(at_chance, 40) > 0.9
