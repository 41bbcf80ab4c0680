"""Grading one answer against its expected answer. Pure: no Django, no database.

Every grader returns a *credit* in ``[0.0, 1.0]``; a question's points times its credit is what it adds
to the score, and :func:`score_percent` turns the sum into a 0-100 score.

Answer types:

- ``single``: one label; right when it equals one of the accepted labels exactly.
- ``multi``: a set of labels; right when the set equals the expected set (``partial=True``: Jaccard).
- ``text``: free text; right when it equals an accepted answer after trimming, collapsing whitespace
  and ignoring case.
- ``numeric``: a number; right when within ``tolerance`` of the expected value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Final


class AnswerType(StrEnum):
    SINGLE = "single"
    MULTI = "multi"
    TEXT = "text"
    NUMERIC = "numeric"


# The task kinds' string values (copied from ``tasks.models.TaskKind``; this app must not import tasks).
MULTILABEL_TASK_KINDS: Final = frozenset({"image_multilabel", "text_multilabel"})
SINGLE_LABEL_TASK_KINDS: Final = frozenset({"image_classification", "text_classification"})


def answer_type_for_task_kind(task_kind: str) -> AnswerType:
    """The answer type a task kind's labels are graded as."""
    if task_kind in MULTILABEL_TASK_KINDS:
        return AnswerType.MULTI
    if task_kind in SINGLE_LABEL_TASK_KINDS:
        return AnswerType.SINGLE
    raise ValueError(f"Unknown task kind {task_kind!r}.")


def _as_label(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    return None


def _as_label_set(value: object) -> frozenset[str] | None:
    if isinstance(value, str):
        return frozenset({value})
    if not isinstance(value, list | tuple | set | frozenset):
        return None
    labels = [_as_label(v) for v in value]
    if any(label is None for label in labels):
        return None
    return frozenset(label for label in labels if label is not None)


def grade_single(answer: object, accepted: Iterable[str]) -> float:
    """1.0 when ``answer`` is exactly one of the accepted labels, else 0.0."""
    label = _as_label(answer)
    return 1.0 if label is not None and label in set(accepted) else 0.0


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Size of the intersection over size of the union; two empty sets agree fully."""
    union = a | b
    return 1.0 if not union else len(a & b) / len(union)


def grade_multi(answer: object, expected: Iterable[str], *, partial: bool = False) -> float:
    """Set equality (1.0 or 0.0), or with ``partial`` the Jaccard similarity of the two sets."""
    given = _as_label_set(answer)
    if given is None:
        return 0.0
    wanted = frozenset(expected)
    if partial:
        return jaccard(given, wanted)
    return 1.0 if given == wanted else 0.0


def normalise_text(value: str) -> str:
    return " ".join(value.split()).casefold()


def grade_text(answer: object, accepted: Iterable[str]) -> float:
    """1.0 when the trimmed, whitespace-collapsed, case-folded answer equals an accepted one."""
    if not isinstance(answer, str):
        return 0.0
    given = normalise_text(answer)
    return 1.0 if any(given == normalise_text(a) for a in accepted) else 0.0


def parse_number(value: object) -> float | None:
    """A finite float from a number or numeric string, else None (booleans are not numbers)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip().replace(",", "."))
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def grade_numeric(answer: object, expected: float, *, tolerance: float = 0.0) -> float:
    """1.0 when ``|answer - expected| <= tolerance`` (plus a tiny float epsilon), else 0.0."""
    if tolerance < 0:
        raise ValueError("tolerance must not be negative")
    given = parse_number(answer)
    if given is None:
        return 0.0
    return 1.0 if abs(given - expected) <= tolerance + 1e-9 else 0.0


def grade_answer(
    answer_type: str,
    answer: object,
    expected: Sequence[object],
    *,
    tolerance: float = 0.0,
    partial: bool = False,
) -> float:
    """Grade one answer. ``expected`` is the list of accepted answers (single, text), the expected set
    (multi), or a one-element list holding the expected number (numeric)."""
    kind = AnswerType(answer_type)
    if kind is AnswerType.SINGLE:
        return grade_single(answer, [str(e) for e in expected])
    if kind is AnswerType.MULTI:
        return grade_multi(answer, [str(e) for e in expected], partial=partial)
    if kind is AnswerType.TEXT:
        return grade_text(answer, [str(e) for e in expected])
    numbers = [n for n in (parse_number(e) for e in expected) if n is not None]
    if not numbers:
        return 0.0
    return max(grade_numeric(answer, n, tolerance=tolerance) for n in numbers)


def grade_label(task_kind: str, answer: object, expected: object, *, partial: bool = False) -> float:
    """Grade a label answer for a task kind (exact label, or label set for multi-label kinds).

    The same rule a gold question of that task kind is graded by.
    """
    kind = answer_type_for_task_kind(task_kind)
    if kind is AnswerType.MULTI:
        wanted = _as_label_set(expected)
        return 0.0 if wanted is None else grade_multi(answer, wanted, partial=partial)
    label = _as_label(expected)
    return 0.0 if label is None else grade_single(answer, [label])


def score_percent(graded: Iterable[tuple[float, float]]) -> float:
    """0-100 from ``(credit, points)`` pairs: summed credit*points over summed points, rounded to 2 places.

    Questions worth 0 points are unscored; a test with nothing scored scores 100.
    """
    earned = 0.0
    possible = 0.0
    for credit, points in graded:
        if points < 0 or not 0.0 <= credit <= 1.0:
            raise ValueError("credit must be within [0, 1] and points not negative")
        earned += credit * points
        possible += points
    if possible == 0:
        return 100.0
    return round(100.0 * earned / possible, 2)
