"""MACE's strategy shrinkage: hand-made cases and the real answer sets where it matters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.aggregation.incidence import Incidence
from tasks.aggregation.mace import MACE
from tests.tasks.aggregation.test_aggregators import accuracy, frame, load, needs_data


def biased_rows(n_tasks: int, seed: int = 0) -> tuple[list[tuple[str, str, str]], np.ndarray]:
    """Three careful workers and one who, when not careful (half the time), answers "x"."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(["x", "y"], n_tasks)
    rows = []
    for i, y in enumerate(truth):
        for w in ("g1", "g2", "g3"):
            rows.append((f"t{i}", w, y if rng.random() < 0.9 else ("x" if y == "y" else "y")))
        rows.append((f"t{i}", "lazy", y if rng.random() < 0.5 else "x"))
    return rows, truth


def strategy_of(model: MACE, worker: str, label: str) -> float:
    answers = model.answers_
    w = int(np.flatnonzero(answers.worker_names == worker)[0])
    k = int(np.flatnonzero(answers.classes == label)[0])
    return float(model.strategy_[w, k])


def test_answers_per_worker_counts_every_answer() -> None:
    model = MACE().fit(frame([("t1", "a", "x"), ("t2", "a", "y"), ("t1", "b", "x")]))
    counts = Incidence(model.answers_).answers_per_worker()
    assert dict(zip(model.answers_.worker_names, counts, strict=True)) == {"a": 2.0, "b": 1.0}


def test_shrinkage_pulls_a_biased_strategy_part_of_the_way_to_uniform() -> None:
    rows, _ = biased_rows(400)
    plain = strategy_of(MACE(strategy_shrink=0.0).fit(frame(rows)), "lazy", "x")
    shrunk = strategy_of(MACE().fit(frame(rows)), "lazy", "x")
    assert plain > 0.85  # the unshrunk strategy follows the worker's habit
    assert 0.5 < shrunk < plain - 0.1  # still leaning to "x", but much less


def test_the_pull_does_not_fade_as_the_worker_answers_more() -> None:
    few, _ = biased_rows(200, seed=1)
    many, _ = biased_rows(3200, seed=1)
    at_200 = strategy_of(MACE().fit(frame(few)), "lazy", "x")
    at_3200 = strategy_of(MACE().fit(frame(many)), "lazy", "x")
    plain_3200 = strategy_of(MACE(strategy_shrink=0.0).fit(frame(many)), "lazy", "x")
    assert at_3200 < plain_3200 - 0.1
    assert abs(at_3200 - at_200) < 0.05


def test_shrinkage_keeps_the_labels_right_on_a_clear_hand_made_job() -> None:
    rows, truth = biased_rows(300, seed=2)
    labels = MACE().fit(frame(rows)).labels_
    assert float((labels.to_numpy() == truth).mean()) > 0.95


@pytest.mark.parametrize("variational", [True, False])
def test_strategies_are_distributions(variational: bool) -> None:
    rows, _ = biased_rows(100, seed=3)
    model = MACE(variational=variational).fit(frame(rows))
    np.testing.assert_allclose(model.strategy_.sum(axis=1), 1.0)
    assert ((model.skills_ > 0) & (model.skills_ < 1)).all()


@needs_data
@pytest.mark.parametrize("name", ["zencrowd", "duchenne", "product"])
def test_shrinkage_beats_the_plain_model_where_workers_over_report_a_class(name: str) -> None:
    answers, gold = load(name)
    shrunk = accuracy(MACE().fit_predict(answers), gold)
    plain = accuracy(MACE(strategy_shrink=0.0).fit_predict(answers), gold)
    assert shrunk > plain + 0.02


@needs_data
def test_mace_on_duck_keeps_its_accuracy_with_many_answers_per_task() -> None:
    answers, gold = load("duck")  # 39 answers per task: little shrinkage
    assert accuracy(MACE().fit_predict(answers), gold) > 0.85


def test_results_do_not_depend_on_row_order() -> None:
    rows, _ = biased_rows(50, seed=4)
    df = frame(rows)
    first = MACE().fit(df).probas_
    second = MACE().fit(df.sample(frac=1.0, random_state=0)).probas_
    pd.testing.assert_frame_equal(first.sort_index(), second.sort_index(), atol=1e-9)
