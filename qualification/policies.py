"""Who may work on a job: requirement specs and their check. Pure: no Django, no database.

A job's ``requirements`` is a JSON list of specs:

- ``{"kind": "test", "test": <QualificationTest id, any version>, "min_score": N}`` (``min_score``
  optional, 0-100; without it a live grant is enough),
- ``{"kind": "not_blocked"}``,
- ``{"kind": "approved_assignments", "min": N}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, TypeGuard

from workforce.ids import MAX_ID

TEST: Final = "test"
NOT_BLOCKED: Final = "not_blocked"
APPROVED_ASSIGNMENTS: Final = "approved_assignments"
FULL_MARKS: Final = 100.0

_ALLOWED_KEYS: Final[dict[str, frozenset[str]]] = {
    TEST: frozenset({"kind", "test", "min_score"}),
    NOT_BLOCKED: frozenset({"kind"}),
    APPROVED_ASSIGNMENTS: frozenset({"kind", "min"}),
}


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def validate_requirements(requirements: object) -> list[str]:
    """One sentence per problem in a requirements list; empty when it is valid."""
    if not isinstance(requirements, list):
        return ["Requirements must be a list of objects."]
    errors: list[str] = []
    for number, spec in enumerate(requirements, start=1):
        where = f"Requirement {number}"
        if not isinstance(spec, dict):
            errors.append(f"{where} must be an object with a 'kind'.")
            continue
        kind = spec.get("kind")
        if not isinstance(kind, str) or kind not in _ALLOWED_KEYS:
            errors.append(f"{where} has unknown kind {kind!r}; use one of: {', '.join(_ALLOWED_KEYS)}.")
            continue
        unknown = sorted(set(spec) - _ALLOWED_KEYS[kind])
        if unknown:
            errors.append(f"{where} ({kind}) has unknown key(s): {', '.join(unknown)}.")
        if kind == TEST:
            test = spec.get("test")
            if not _is_int(test) or not 0 < test <= MAX_ID:
                errors.append(f"{where} (test) needs 'test': the id of a qualification test.")
            if "min_score" in spec:
                min_score = spec["min_score"]
                if not _is_number(min_score) or not 0 <= min_score <= 100:
                    errors.append(f"{where} (test) has 'min_score' {min_score!r}; it must be a number from 0 to 100.")
        elif kind == APPROVED_ASSIGNMENTS:
            minimum = spec.get("min")
            if not _is_int(minimum) or minimum < 0:
                errors.append(f"{where} (approved_assignments) needs 'min': a whole number of at least 0.")
    return errors


def required_test_ids(requirements: list[dict[str, Any]]) -> list[int]:
    """The test ids named by ``test`` requirements, in order, without repeats."""
    ids = [spec["test"] for spec in requirements if spec.get("kind") == TEST and _is_int(spec.get("test"))]
    return list(dict.fromkeys(ids))


def unmet_requirements(
    requirements: list[dict[str, Any]],
    *,
    grants: Mapping[int, float],
    is_blocked: bool,
    approved_assignments: int,
    test_names: Mapping[int, str] | None = None,
) -> list[str]:
    """One sentence per requirement the worker does not meet; empty when the worker qualifies.

    ``grants`` maps a test id to the worker's best live grant score for that test's family; the
    selector ``worker_grant_scores`` puts every version's id of a family in it, so a requirement naming
    any version matches. An invalid spec counts as unmet (fail closed).
    """
    names = test_names or {}
    unmet: list[str] = []
    for spec in requirements:
        kind = spec.get("kind") if isinstance(spec, dict) else None
        if kind == TEST:
            test_id = spec.get("test")
            min_score = spec.get("min_score")
            if not _is_int(test_id) or (min_score is not None and not _is_number(min_score)):
                unmet.append("This job has a qualification requirement that is set up wrongly.")
                continue
            name = names.get(test_id, f"#{test_id}")
            score = grants.get(test_id)
            if score is None:
                unmet.append(f"You need to pass the qualification test “{name}”.")
            elif min_score is not None and score < min_score:
                unmet.append(
                    f"You need a score of at least {min_score:g} in the qualification test “{name}” "
                    f"(your best is {score:g})."
                )
        elif kind == NOT_BLOCKED:
            if is_blocked:
                unmet.append("Your account is blocked from this work.")
        elif kind == APPROVED_ASSIGNMENTS:
            minimum = spec.get("min")
            if not _is_int(minimum):
                unmet.append("This job has an approved-work requirement that is set up wrongly.")
            elif approved_assignments < minimum:
                unmet.append(
                    f"You need at least {minimum} approved task{'s' if minimum != 1 else ''} "
                    f"(you have {approved_assignments})."
                )
        else:
            unmet.append("This job has a requirement this system does not understand.")
    return unmet


@dataclass(frozen=True)
class AttemptAllowance:
    """Whether a worker may start a new attempt at a test version now, and the sentence if not."""

    attempts_used: int
    attempts_left: int
    retry_at: datetime | None
    refusal: str


def attempt_policy(
    *,
    test_name: str,
    is_open: bool,
    max_attempts: int,
    retry_delay: timedelta,
    attempt_ends: Sequence[datetime],
    attempts_used: int,
    passed_score: float | None,
    now: datetime,
) -> AttemptAllowance:
    """May a worker start an attempt? ``attempt_ends``: when each closed attempt was submitted or expired;
    ``passed_score``: the worker's live grant score at this version, if any.

    A worker who passed below full marks may retake the test to raise the score (a job may ask for more
    than the pass mark), within the same attempt limit and retry delay; the grant keeps the best score."""
    left = max(max_attempts - attempts_used, 0)
    retry_at = max(attempt_ends) + retry_delay if attempt_ends else None
    refusal = ""
    if passed_score is not None and (passed_score >= FULL_MARKS or left == 0 or not is_open):
        refusal = f"You have already passed “{test_name}” with a score of {passed_score:g}."
    elif not is_open:
        refusal = f"“{test_name}” is not open for attempts."
    elif left == 0:
        refusal = f"You have used all {max_attempts} attempt{'s' if max_attempts != 1 else ''} at “{test_name}”."
    elif retry_at is not None and now < retry_at:
        refusal = f"You can try “{test_name}” again from {_next_minute(retry_at):%Y-%m-%d %H:%M} UTC."
    return AttemptAllowance(attempts_used=attempts_used, attempts_left=left, retry_at=retry_at, refusal=refusal)


def _next_minute(moment: datetime) -> datetime:
    """``moment`` rounded up to the minute: a worker who comes back at the minute shown is never early."""
    whole = moment.replace(second=0, microsecond=0)
    return whole if whole == moment else whole + timedelta(minutes=1)
