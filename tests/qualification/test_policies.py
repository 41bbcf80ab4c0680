"""qualification.policies: requirement specs, their validation, and who meets them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from qualification.policies import (
    AttemptAllowance,
    attempt_policy,
    required_test_ids,
    unmet_requirements,
    validate_requirements,
)

NOW = datetime(2025, 1, 1, 12, tzinfo=UTC)
REQS = [
    {"kind": "test", "test": 3, "min_score": 80},
    {"kind": "not_blocked"},
    {"kind": "approved_assignments", "min": 100},
]


def unmet(grants: dict[int, float], blocked: bool = False, approved: int = 500) -> list[str]:
    return unmet_requirements(
        REQS, grants=grants, is_blocked=blocked, approved_assignments=approved, test_names={3: "Cats"}
    )


def test_a_worker_meeting_every_requirement_has_nothing_unmet() -> None:
    assert unmet({3: 80.0}) == []
    assert unmet_requirements([], grants={}, is_blocked=True, approved_assignments=0) == []


def test_each_unmet_requirement_gets_its_own_sentence() -> None:
    sentences = unmet({}, blocked=True, approved=7)
    assert sentences == [
        "You need to pass the qualification test “Cats”.",
        "Your account is blocked from this work.",
        "You need at least 100 approved tasks (you have 7).",
    ]


def test_a_grant_below_the_minimum_score_does_not_count() -> None:
    assert unmet({3: 79.5}) == ["You need a score of at least 80 in the qualification test “Cats” (your best is 79.5)."]


def test_a_test_requirement_without_min_score_needs_only_a_grant() -> None:
    reqs = [{"kind": "test", "test": 9}]
    assert unmet_requirements(reqs, grants={9: 0.0}, is_blocked=False, approved_assignments=0) == []
    assert unmet_requirements(reqs, grants={}, is_blocked=False, approved_assignments=0) == [
        "You need to pass the qualification test “#9”."
    ]


def test_broken_or_unknown_specs_fail_closed() -> None:
    reqs = [{"kind": "test", "test": "3"}, {"kind": "karma"}, {"kind": "approved_assignments"}]
    assert len(unmet_requirements(reqs, grants={3: 100.0}, is_blocked=False, approved_assignments=10**6)) == 3


def test_valid_requirements_have_no_errors() -> None:
    assert validate_requirements(REQS) == []
    assert validate_requirements([]) == []
    assert validate_requirements([{"kind": "test", "test": 1}]) == []


def test_bad_requirement_specs_are_reported_one_sentence_each() -> None:
    errors = validate_requirements(
        [
            {"kind": "test", "test": 0, "min_score": 120},
            {"kind": "approved_assignments", "min": -1},
            {"kind": "approved_assignments", "min": True},
            {"kind": "not_blocked", "extra": 1},
            {"kind": "karma"},
            "test",
        ]
    )
    assert errors == [
        "Requirement 1 (test) needs 'test': the id of a qualification test.",
        "Requirement 1 (test) has 'min_score' 120; it must be a number from 0 to 100.",
        "Requirement 2 (approved_assignments) needs 'min': a whole number of at least 0.",
        "Requirement 3 (approved_assignments) needs 'min': a whole number of at least 0.",
        "Requirement 4 (not_blocked) has unknown key(s): extra.",
        "Requirement 5 has unknown kind 'karma'; use one of: test, not_blocked, approved_assignments.",
        "Requirement 6 must be an object with a 'kind'.",
    ]
    assert validate_requirements({"kind": "test"}) == ["Requirements must be a list of objects."]


def test_required_test_ids_are_listed_once_in_order() -> None:
    assert required_test_ids(
        [{"kind": "test", "test": 5}, {"kind": "not_blocked"}, {"kind": "test", "test": 5}, {"kind": "test", "test": 2}]
    ) == [5, 2]


def policy(attempt_ends: list[datetime], attempts_used: int, passed_score: float | None = None) -> AttemptAllowance:
    return attempt_policy(
        test_name="T",
        is_open=True,
        max_attempts=2,
        retry_delay=timedelta(hours=1),
        attempt_ends=attempt_ends,
        attempts_used=attempts_used,
        passed_score=passed_score,
        now=NOW,
    )


def test_attempt_policy_refuses_during_the_retry_delay_and_after_the_last_attempt() -> None:
    fresh = policy([], 0)
    assert fresh.refusal == "" and fresh.attempts_left == 2
    waiting = policy([NOW - timedelta(minutes=59)], 1)
    assert waiting.refusal == "You can try “T” again from 2025-01-01 12:01 UTC."
    assert waiting.retry_at == NOW + timedelta(minutes=1)
    assert policy([NOW - timedelta(minutes=60)], 1).refusal == ""
    used_up = policy([NOW - timedelta(days=2), NOW - timedelta(days=1)], 2)
    assert used_up.refusal == "You have used all 2 attempts at “T”."
    # passed below full marks: a retake may raise the score, under the same delay and attempt limit
    assert policy([NOW], 1, passed_score=90.0).refusal == "You can try “T” again from 2025-01-01 13:00 UTC."
    assert policy([NOW - timedelta(hours=1)], 1, passed_score=90.0).refusal == ""
    assert policy([NOW], 2, passed_score=90.0).refusal == "You have already passed “T” with a score of 90."
    assert policy([NOW], 1, passed_score=100.0).refusal == "You have already passed “T” with a score of 100."
