"""Adaptive redundancy on a budget: the neediest items first, never more answers than the budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tasks.aggregation.adaptive import CONFIDENCE_STEPS, RedundancyPolicy, neediest, neediest_step
from tasks.aggregation.base import Answers
from tasks.aggregation.replay import parse_budget, replay
from tests.tasks.aggregation.test_adaptive import gold_of, real_set, synthetic
from tests.tasks.aggregation.test_aggregators import frame, needs_data
from tests.tasks.aggregation.test_replay_command import files, replay_json

SPEND_ALL = 0.999999  # a target no item reaches: the budget decides when to stop


def test_the_least_settled_items_go_first_one_step_at_a_time() -> None:
    settled = np.array([0.5, 0.95, 0.995, 0.9999, 0.2])
    wants = np.array([True, True, True, True, False])
    assert neediest(settled, wants, 0.999).tolist() == [True, False, False, False, False]
    wants[0] = False  # the toss-up is served: the next step (0.97) takes the 0.95 item only
    assert neediest(settled, wants, 0.999).tolist() == [False, True, False, False, False]
    wants[1] = False  # 0.995 is below 0.997
    assert neediest(settled, wants, 0.999).tolist() == [False, False, True, False, False]
    assert CONFIDENCE_STEPS[0] == 0.9
    assert neediest_step(settled, wants, 0.999) == 0.997
    assert neediest_step(settled, np.zeros(5, dtype=bool), 0.999) is None


def test_items_past_every_step_below_the_target_all_go() -> None:
    settled = np.array([0.99991, 0.99993])
    wants = np.array([True, True])
    # the only step left is the target itself, and both are below it
    assert neediest(settled, wants, 0.99995).tolist() == [True, True]
    # wanting items already at the target (still short of the minimum) are not held back
    assert neediest(np.array([1.0, 1.0]), wants, 0.99).tolist() == [True, True]
    assert not neediest(settled, np.zeros(2, dtype=bool), 0.999).any()


def test_a_budgeted_replay_never_uses_more_than_its_budget() -> None:
    answers, truth = synthetic(200, 7, accuracy=0.7)
    gold = answers.encode_gold(gold_of(answers, truth))
    policy = RedundancyPolicy(target=SPEND_ALL)
    free = replay(answers, gold, policy="adaptive", redundancy=policy, seed=3)
    budgeted = replay(answers, gold, policy="adaptive", redundancy=policy, seed=3, budget=700)
    assert free.answers_used > 700
    assert budgeted.answers_used == 700 and budgeted.budget == 700
    fixed = replay(answers, gold, policy="fixed", redundancy=policy, seed=3, budget=700)
    assert fixed.answers_used == answers.n_answers and fixed.budget is None  # fixed ignores the budget


def _easy_and_hard(n_tasks: int, seed: int) -> tuple[Answers, np.ndarray]:
    """Binary tasks with 7 answers each from 10 workers: even tasks easy (answers right 95% of the time), odd
    tasks hard (65%), the difficulty a budget should find."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n_tasks)
    rows = []
    for i, y in enumerate(truth):
        right = 0.95 if i % 2 == 0 else 0.65
        for w in rng.choice(10, 7, replace=False):
            rows.append((f"t{i:04d}", f"w{w}", str(y if rng.random() < right else 1 - y)))
    return Answers.from_frame(frame(rows)), truth


def test_a_budget_spent_on_the_neediest_items_beats_the_same_answers_spread_evenly() -> None:
    gains = []
    for seed in range(4):
        answers, truth = _easy_and_hard(400, seed)
        gold = answers.encode_gold(gold_of(answers, truth))
        even = replay(answers, gold, policy="fixed", redundancy=RedundancyPolicy(max_answers=3), seed=1)
        targeted = replay(
            answers, gold, policy="adaptive", redundancy=RedundancyPolicy(target=SPEND_ALL), seed=1, budget=1200
        )
        assert even.answers_used == targeted.answers_used == 1200
        gains.append(targeted.accuracy - even.accuracy)
    # easy items stop at two agreeing answers and the hard ones get the rest: better on every seed, and by a
    # point on average (where every item is equally hard, 3 answers each is as good a use of the budget)
    assert min(gains) > 0
    assert np.mean(gains) >= 0.01


def test_a_budget_below_the_minimum_is_refused() -> None:
    answers, truth = synthetic(50, 4)
    gold = answers.encode_gold(gold_of(answers, truth))
    with pytest.raises(ValueError, match="does not pay for the minimum of 2 answers per item"):
        replay(answers, gold, policy="adaptive", redundancy=RedundancyPolicy(), budget=99)


def test_a_budget_is_a_number_of_answers_or_a_share_of_fixed() -> None:
    answers, _ = synthetic(50, 4)
    assert parse_budget("120", answers, RedundancyPolicy()) == 120
    assert parse_budget("70%", answers, RedundancyPolicy()) == 140
    assert parse_budget("50%", answers, RedundancyPolicy(max_answers=3)) == 75
    for bad in ("", "lots", "0", "0%", "150%", "-5"):
        with pytest.raises(ValueError, match="budget"):
            parse_budget(bad, answers, RedundancyPolicy())


def test_the_command_takes_a_budget(tmp_path: Path) -> None:
    answers, gold = files(tmp_path)
    args = ["--answers", answers, "--gold", gold, "--policy", "adaptive", "--target", str(SPEND_ALL)]
    result = replay_json(*args, "--budget", "60%")
    assert result["budget"] == 48 and result["answers_used"] == 48


@pytest.mark.parametrize(("budget", "needle"), [("ten", "neither a number"), ("20", "minimum of 2 answers")])
def test_a_bad_budget_exits_with_code_2(tmp_path: Path, budget: str, needle: str) -> None:
    answers, gold = files(tmp_path)
    with pytest.raises(CommandError, match=needle) as info:
        call_command("replay", "--answers", answers, "--gold", gold, "--policy", "adaptive", "--budget", budget)
    assert info.value.returncode == 2


@needs_data
@pytest.mark.parametrize("name", ["sp", "zencrowd"])
def test_thirty_percent_fewer_answers_keep_the_accuracy_of_all_of_them(name: str) -> None:
    answers, gold = real_set(name)
    policy = RedundancyPolicy(target=SPEND_ALL)
    fixed = replay(answers, gold, policy="fixed", redundancy=policy, seed=0)
    budget = parse_budget("70%", answers, policy)
    adaptive = replay(answers, gold, policy="adaptive", redundancy=policy, seed=0, budget=budget)
    assert adaptive.answers_used <= 0.7 * fixed.answers_used
    assert adaptive.accuracy >= fixed.accuracy - 0.005
