"""qualification.services: attempts (time limit, retry delay, attempt limit), grants, versions, audit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from qualification.errors import AttemptRefused, InvalidTest, QualificationError
from qualification.models import Attempt, AttemptState, Grant, QualificationTest
from qualification.services import (
    SUBMIT_GRACE,
    create_new_version,
    edit_test,
    expire_overdue_attempts,
    revoke_grant,
    start_attempt,
    submit_attempt,
)
from qualification.specs import QuestionSpec
from tests.factories import WorkerFactory
from tests.qualification.conftest import OPS, RIGHT, T0
from workforce.models import AuditEvent, Worker

pytestmark = pytest.mark.django_db
MakeTest = Callable[..., QualificationTest]
WRONG = {"q1": "neg", "q2": "c-a", "q3": "nope", "q4": "41"}


def actions(object_type: str | None = None) -> list[str]:
    events = AuditEvent.objects.order_by("id")
    if object_type:
        events = events.filter(object_type=object_type)
    return list(events.values_list("action", flat=True))


def test_a_right_submission_scores_100_passes_and_grants_the_version(make_test: MakeTest, worker: Worker) -> None:
    test = make_test()
    attempt = start_attempt(test=test, worker=worker, now=T0)
    assert attempt.deadline == T0 + timedelta(minutes=10)
    done = submit_attempt(attempt=attempt, worker=worker, answers=RIGHT, now=T0 + timedelta(minutes=3))
    assert (done.state, done.score, done.passed) == (AttemptState.SUBMITTED, 100.0, True)
    assert done.credits == {"q1": 1.0, "q2": 1.0, "q3": 1.0, "q4": 1.0}
    grant = Grant.objects.get(worker=worker)
    assert (grant.test_id, grant.family_id, grant.version, grant.score) == (test.pk, test.pk, 1, 100.0)
    assert grant.granted_at == T0 + timedelta(minutes=3)


def test_a_score_below_the_pass_mark_grants_nothing(make_test: MakeTest, worker: Worker) -> None:
    test = make_test(pass_score=75)
    attempt = start_attempt(test=test, worker=worker, now=T0)
    done = submit_attempt(attempt=attempt, worker=worker, answers={**RIGHT, "q4": "1"}, now=T0)
    assert (done.score, done.passed) == (75.0, True)
    other = WorkerFactory()
    attempt = start_attempt(test=test, worker=other, now=T0)
    done = submit_attempt(attempt=attempt, worker=other, answers={**RIGHT, "q3": "x", "q4": "1"}, now=T0)
    assert (done.score, done.passed) == (50.0, False)
    assert not Grant.objects.filter(worker=other).exists()


def test_unknown_questions_and_junk_values_in_answers_are_dropped(make_test: MakeTest, worker: Worker) -> None:
    test = make_test()
    attempt = start_attempt(test=test, worker=worker, now=T0)
    done = submit_attempt(attempt=attempt, worker=worker, answers={"q1": "pos", "zzz": "1", "q2": {"x": 1}}, now=T0)
    assert done.answers == {"q1": "pos"}
    assert done.score == 25.0


def test_answers_after_the_deadline_are_refused_and_the_attempt_expires(make_test: MakeTest, worker: Worker) -> None:
    test = make_test(time_limit=timedelta(minutes=5))
    attempt = start_attempt(test=test, worker=worker, now=T0)
    late = T0 + timedelta(minutes=5) + SUBMIT_GRACE + timedelta(seconds=1)
    with pytest.raises(AttemptRefused, match="Time ran out"):
        submit_attempt(attempt=attempt, worker=worker, answers=RIGHT, now=late)
    attempt.refresh_from_db()
    assert (attempt.state, attempt.score, attempt.passed, attempt.answers) == (AttemptState.EXPIRED, 0.0, False, {})
    assert not Grant.objects.exists()
    assert actions("qualification_attempt") == ["qualification.attempt_started", "qualification.attempt_expired"]
    with pytest.raises(AttemptRefused, match="already closed"):
        submit_attempt(attempt=attempt, worker=worker, answers=RIGHT, now=T0)


def test_a_submit_just_inside_the_grace_still_counts(make_test: MakeTest, worker: Worker) -> None:
    test = make_test(time_limit=timedelta(minutes=5))
    attempt = start_attempt(test=test, worker=worker, now=T0)
    done = submit_attempt(attempt=attempt, worker=worker, answers=RIGHT, now=T0 + timedelta(minutes=5) + SUBMIT_GRACE)
    assert done.passed


def test_the_retry_delay_holds_after_a_failed_attempt(make_test: MakeTest, worker: Worker) -> None:
    test = make_test(retry_delay=timedelta(hours=2))
    first = start_attempt(test=test, worker=worker, now=T0)
    submit_attempt(attempt=first, worker=worker, answers=WRONG, now=T0 + timedelta(minutes=1))
    with pytest.raises(AttemptRefused, match=r"again from 2025-03-01 14:01 UTC"):
        start_attempt(test=test, worker=worker, now=T0 + timedelta(hours=2))
    second = start_attempt(test=test, worker=worker, now=T0 + timedelta(hours=2, minutes=1))
    assert second.number == 2


def test_the_retry_delay_runs_from_the_deadline_of_an_expired_attempt(make_test: MakeTest, worker: Worker) -> None:
    test = make_test(time_limit=timedelta(minutes=10), retry_delay=timedelta(hours=1))
    start_attempt(test=test, worker=worker, now=T0)
    with pytest.raises(AttemptRefused, match="again from 2025-03-01 13:10 UTC"):
        start_attempt(test=test, worker=worker, now=T0 + timedelta(minutes=30))
    assert Attempt.objects.get(number=1).state == AttemptState.EXPIRED
    assert start_attempt(test=test, worker=worker, now=T0 + timedelta(hours=1, minutes=10)).number == 2


def test_starting_again_while_an_attempt_is_open_returns_that_attempt(make_test: MakeTest, worker: Worker) -> None:
    test = make_test()
    first = start_attempt(test=test, worker=worker, now=T0)
    again = start_attempt(test=test, worker=worker, now=T0 + timedelta(minutes=1))
    assert again.pk == first.pk
    assert Attempt.objects.count() == 1


def test_no_attempt_starts_once_the_limit_is_used(make_test: MakeTest, worker: Worker) -> None:
    test = make_test(max_attempts=2, retry_delay=timedelta(0))
    for n in range(2):
        attempt = start_attempt(test=test, worker=worker, now=T0 + timedelta(minutes=n))
        submit_attempt(attempt=attempt, worker=worker, answers=WRONG, now=T0 + timedelta(minutes=n))
    with pytest.raises(AttemptRefused, match="You have used all 2 attempts"):
        start_attempt(test=test, worker=worker, now=T0 + timedelta(days=30))
    assert Attempt.objects.filter(worker=worker).count() == 2
    # Another worker is not affected.
    assert start_attempt(test=test, worker=WorkerFactory(), now=T0).number == 1


def test_a_worker_who_passed_cannot_start_again_until_revoked(make_test: MakeTest, worker: Worker) -> None:
    test = make_test(retry_delay=timedelta(0))
    attempt = start_attempt(test=test, worker=worker, now=T0)
    submit_attempt(attempt=attempt, worker=worker, answers=RIGHT, now=T0)
    with pytest.raises(AttemptRefused, match="already passed"):
        start_attempt(test=test, worker=worker, now=T0 + timedelta(days=1))
    grant = Grant.objects.get(worker=worker)
    revoke_grant(grant=grant, actor=OPS, reason="Cheating suspected", now=T0 + timedelta(days=1))
    with pytest.raises(QualificationError, match="already revoked"):
        revoke_grant(grant=grant, actor=OPS, reason="again")
    retry = start_attempt(test=test, worker=worker, now=T0 + timedelta(days=2))
    submit_attempt(attempt=retry, worker=worker, answers={**RIGHT, "q4": "0"}, now=T0 + timedelta(days=2))
    grant.refresh_from_db()
    assert (grant.revoked_at, grant.score, grant.attempt_id) == (None, 75.0, retry.pk)
    assert Grant.objects.count() == 1


def test_someone_else_cannot_submit_a_workers_attempt(make_test: MakeTest, worker: Worker) -> None:
    attempt = start_attempt(test=make_test(), worker=worker, now=T0)
    with pytest.raises(AttemptRefused, match="not yours"):
        submit_attempt(attempt=attempt, worker=WorkerFactory(), answers=RIGHT, now=T0)


def test_inactive_tests_cannot_be_started(make_test: MakeTest, worker: Worker) -> None:
    with pytest.raises(AttemptRefused, match="not open"):
        start_attempt(test=make_test(is_active=False), worker=worker, now=T0)


def test_the_sweep_expires_only_overdue_open_attempts(make_test: MakeTest, worker: Worker) -> None:
    test = make_test(time_limit=timedelta(minutes=10))
    overdue = start_attempt(test=test, worker=worker, now=T0)
    fresh = start_attempt(test=test, worker=WorkerFactory(), now=T0 + timedelta(minutes=9))
    assert expire_overdue_attempts(now=T0 + timedelta(minutes=11)) == 1
    overdue.refresh_from_db()
    fresh.refresh_from_db()
    assert (overdue.state, fresh.state) == (AttemptState.EXPIRED, AttemptState.OPEN)


# --- versions ---------------------------------------------------------------------------------------


def test_editing_an_unattempted_test_changes_it_in_place(make_test: MakeTest) -> None:
    test = make_test()
    edited = edit_test(test=test, actor=OPS, changes={"pass_score": 90})
    assert edited.pk == test.pk and edited.version == 1 and edited.pass_score == 90
    assert QualificationTest.objects.count() == 1


def test_editing_an_attempted_test_makes_a_new_version_and_grants_keep_theirs(
    make_test: MakeTest, worker: Worker
) -> None:
    test = make_test()
    attempt = start_attempt(test=test, worker=worker, now=T0)
    submit_attempt(attempt=attempt, worker=worker, answers=RIGHT, now=T0)
    new_questions = [QuestionSpec(identifier="n1", prompt="New?", accepted=("neg",))]
    v2 = edit_test(test=test, actor=OPS, changes={"pass_score": 95}, questions=new_questions)
    test.refresh_from_db()
    assert v2.pk != test.pk
    assert (v2.version, v2.slug, v2.root_id, v2.previous_id, v2.is_current) == (2, test.slug, test.pk, test.pk, True)
    assert (test.version, test.pass_score, test.is_current) == (1, 75, False)
    assert [q.identifier for q in test.questions.all()] == ["q1", "q2", "q3", "q4"]
    assert [q.identifier for q in v2.questions.all()] == ["n1"]
    grant = Grant.objects.get(worker=worker)
    assert (grant.test_id, grant.version, grant.family_id) == (test.pk, 1, test.pk)
    v3 = edit_test(test=v2, actor=OPS, changes={"description": "no attempts at v2 yet"})
    assert v3.pk == v2.pk  # v2 had no attempts, so it changed in place
    with pytest.raises(QualificationError, match="not the current version"):
        edit_test(test=test, actor=OPS, changes={"pass_score": 10})
    assert actions("qualification_test") == [
        "qualification.test_created",
        "qualification.test_versioned",
        "qualification.test_edited",
    ]


def test_a_new_version_copies_the_questions_and_resets_attempts(make_test: MakeTest, worker: Worker) -> None:
    test = make_test(max_attempts=1)
    attempt = start_attempt(test=test, worker=worker, now=T0)
    submit_attempt(attempt=attempt, worker=worker, answers=WRONG, now=T0)
    v2 = create_new_version(test=test, actor=OPS)
    assert [(q.identifier, q.accepted) for q in v2.questions.all()] == [
        (q.identifier, q.accepted) for q in test.questions.all()
    ]
    with pytest.raises(AttemptRefused):
        start_attempt(test=test, worker=worker, now=T0 + timedelta(days=9))
    assert start_attempt(test=v2, worker=worker, now=T0 + timedelta(days=9)).number == 1
    with pytest.raises(QualificationError):
        create_new_version(test=test, actor=OPS)


def test_invalid_tests_are_refused_with_a_sentence(make_test: MakeTest) -> None:
    with pytest.raises(InvalidTest, match="pass_score"):
        make_test(pass_score=101)
    with pytest.raises(InvalidTest, match="not in the test's labels"):
        make_test(questions=[QuestionSpec(identifier="a", prompt="?", accepted=("cat",))])
    with pytest.raises(InvalidTest, match="cannot be set"):
        make_test(slug="x")
    assert QualificationTest.objects.count() == 0


def test_attempts_and_grants_are_audited_in_order_with_the_worker_as_actor(make_test: MakeTest, worker: Any) -> None:
    test = make_test()
    attempt = start_attempt(test=test, worker=worker, now=T0)
    submit_attempt(attempt=attempt, worker=worker, answers=RIGHT, now=T0)
    grant = Grant.objects.get()
    revoke_grant(grant=grant, actor=OPS, reason="spot check failed")
    events = list(AuditEvent.objects.exclude(object_type="qualification_test").order_by("id"))
    assert [(e.action, e.actor_kind, e.object_id) for e in events] == [
        ("qualification.attempt_started", "worker", str(attempt.pk)),
        ("qualification.attempt_submitted", "worker", str(attempt.pk)),
        ("qualification.granted", "worker", str(grant.pk)),
        ("qualification.revoked", "system", str(grant.pk)),
    ]
    assert events[1].after["score"] == 100.0 and events[1].after["passed"] is True
    assert events[2].after["version"] == 1
    assert events[3].reason == "spot check failed"
