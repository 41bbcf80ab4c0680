"""qualification.grading: one answer against its expected answer, per answer type and task kind."""

from __future__ import annotations

import pytest

from qualification.grading import (
    AnswerType,
    answer_type_for_task_kind,
    grade_answer,
    grade_label,
    grade_multi,
    grade_numeric,
    grade_single,
    grade_text,
    jaccard,
    score_percent,
)


def test_single_label_is_right_only_on_an_exact_accepted_label() -> None:
    assert grade_single("pos", ["pos"]) == 1.0
    assert grade_single("Pos", ["pos"]) == 0.0
    assert grade_single("neg", ["pos", "neg"]) == 1.0
    assert grade_single(["pos"], ["pos"]) == 0.0
    assert grade_single(None, ["pos"]) == 0.0


def test_multi_label_needs_the_same_set_unless_partial_credit() -> None:
    assert grade_multi(["b", "a"], ["a", "b"]) == 1.0
    assert grade_multi(["a"], ["a", "b"]) == 0.0
    assert grade_multi(["a"], ["a", "b"], partial=True) == pytest.approx(0.5)
    assert grade_multi(["a", "c"], ["a", "b"], partial=True) == pytest.approx(1 / 3)
    assert grade_multi([], [], partial=False) == 1.0
    assert grade_multi("a", ["a"]) == 1.0
    assert grade_multi([{"x": 1}], ["a"]) == 0.0


def test_jaccard_of_disjoint_sets_is_zero() -> None:
    assert jaccard(frozenset({"a"}), frozenset({"b"})) == 0.0


def test_text_ignores_case_and_surrounding_or_repeated_whitespace() -> None:
    assert grade_text("  New   York ", ["new york"]) == 1.0
    assert grade_text("NewYork", ["new york"]) == 0.0
    assert grade_text(7, ["7"]) == 0.0


def test_numeric_uses_the_tolerance_and_parses_strings() -> None:
    assert grade_numeric("3.14", 3.1416, tolerance=0.01) == 1.0
    assert grade_numeric("3,14", 3.1416, tolerance=0.01) == 1.0
    assert grade_numeric(3.2, 3.1416, tolerance=0.01) == 0.0
    assert grade_numeric(5, 5.0) == 1.0
    assert grade_numeric("nan", 5.0, tolerance=100) == 0.0
    assert grade_numeric(True, 1.0) == 0.0
    with pytest.raises(ValueError):
        grade_numeric(1, 1, tolerance=-1)


def test_grade_answer_dispatches_on_the_answer_type() -> None:
    assert grade_answer("single", "a", ["a"]) == 1.0
    assert grade_answer("multi", ["a"], ["a", "b"], partial=True) == 0.5
    assert grade_answer("text", "Hello", ["hello"]) == 1.0
    assert grade_answer("numeric", "10.4", [10], tolerance=0.5) == 1.0
    assert grade_answer("numeric", "10.6", [10], tolerance=0.5) == 0.0
    with pytest.raises(ValueError):
        grade_answer("essay", "x", ["x"])


def test_task_kinds_map_to_single_or_multi_label_grading() -> None:
    assert answer_type_for_task_kind("image_classification") is AnswerType.SINGLE
    assert answer_type_for_task_kind("text_multilabel") is AnswerType.MULTI
    assert grade_label("text_classification", "cat", "cat") == 1.0
    assert grade_label("text_classification", "dog", "cat") == 0.0
    assert grade_label("image_multilabel", ["cat", "dog"], ["dog", "cat"]) == 1.0
    assert grade_label("image_multilabel", ["cat"], ["dog", "cat"], partial=True) == 0.5
    with pytest.raises(ValueError):
        answer_type_for_task_kind("video")


def test_score_is_the_weighted_share_of_points_and_unscored_questions_do_not_count() -> None:
    assert score_percent([(1.0, 1.0), (0.0, 1.0)]) == 50.0
    assert score_percent([(1.0, 3.0), (0.0, 1.0)]) == 75.0
    assert score_percent([(1.0, 1.0), (0.0, 0.0)]) == 100.0
    assert score_percent([(0.5, 2.0), (1.0, 1.0)]) == pytest.approx(66.67)
    assert score_percent([]) == 100.0
    with pytest.raises(ValueError):
        score_percent([(1.5, 1.0)])
