"""Plain descriptions of questions, used to create tests and versions and by the MTurk importer. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qualification.grading import AnswerType, parse_number


@dataclass(frozen=True)
class OptionSpec:
    value: str
    label: str


@dataclass(frozen=True)
class QuestionSpec:
    identifier: str
    prompt: str
    answer_type: str = AnswerType.SINGLE
    title: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    options: tuple[OptionSpec, ...] = ()
    accepted: tuple[Any, ...] = ()
    points: float = 1.0
    tolerance: float = 0.0


def validate_question_specs(questions: list[QuestionSpec] | tuple[QuestionSpec, ...]) -> list[str]:
    """One sentence per problem; empty when the questions can be saved."""
    errors: list[str] = []
    seen: set[str] = set()
    for number, q in enumerate(questions, start=1):
        where = f"Question {number} ({q.identifier or 'no identifier'})"
        if not q.identifier or len(q.identifier) > 64:
            errors.append(f"{where} needs an identifier of 1 to 64 characters.")
        if q.identifier in seen:
            errors.append(f"{where} repeats an identifier.")
        seen.add(q.identifier)
        if q.answer_type not in {t.value for t in AnswerType}:
            errors.append(f"{where} has unknown answer type {q.answer_type!r}.")
            continue
        if q.points < 0 or q.tolerance < 0:
            errors.append(f"{where} has negative points or tolerance.")
        values = [o.value for o in q.options]
        if len(set(values)) != len(values):
            errors.append(f"{where} repeats an option value.")
        if q.points > 0 and not q.accepted and q.answer_type != AnswerType.MULTI:
            errors.append(f"{where} is scored but has no accepted answer.")
        if q.options and q.answer_type in (AnswerType.SINGLE, AnswerType.MULTI):
            unknown = [a for a in q.accepted if str(a) not in values]
            if unknown:
                errors.append(f"{where} accepts {unknown!r}, which is not among its options.")
    return errors


def unreadable_numbers(spec: QuestionSpec) -> list[object]:
    """A numeric question's accepted answers that are not finite numbers (a question no answer can pass).
    Checked where a question is typed (the admin form), not on questions stored before the check, so an
    existing test can still get a new version."""
    if spec.answer_type != AnswerType.NUMERIC:
        return []
    return [a for a in spec.accepted if parse_number(a) is None]
