"""The qualification findings of the crowd worker audit (/work/audit/worker.md): a NUL in an answer, a
worker passed below a job's minimum score, retry times and late submits said once and right, and a
submit URL reached by GET after signing in again."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from qualification.errors import AttemptRefused
from qualification.models import Attempt, AttemptState, Grant, QualificationTest
from qualification.policies import attempt_policy
from qualification.selectors import list_tests_for_worker
from qualification.services import start_attempt, submit_attempt
from tests.qualification.conftest import RIGHT, T0
from tests.qualification.test_views import post_answers, start
from workforce.models import Worker

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.qualification.urls")]
MakeTest = Callable[..., QualificationTest]
THREE_OF_FOUR = {**RIGHT, "q3": "wrong"}  # 75%
TWO_OF_FOUR = {**RIGHT, "q3": "wrong", "q4": "1"}  # 50%


# --- 2: a NUL character in an answer -------------------------------------------------------------------


def test_a_nul_in_an_answer_is_dropped_before_it_is_stored(
    make_test: MakeTest, worker: Worker, worker_client: Client
) -> None:
    attempt = start(worker_client, make_test())
    post_answers(worker_client, attempt, {**RIGHT, "q1": "po\x00s", "q3": "Zanzibar\x00-Quokka"})
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.SUBMITTED and attempt.score == 100
    assert attempt.answers["q1"] == "pos" and attempt.answers["q3"] == "Zanzibar-Quokka"


@pytest.mark.postgres
@pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs PostgreSQL (jsonb cannot store NUL)")
def test_a_nul_in_an_answer_is_no_500_on_postgresql(make_test: MakeTest, worker_client: Client) -> None:
    attempt = start(worker_client, make_test())
    location = post_answers(worker_client, attempt, {**RIGHT, "q1": "squ\x00are"})
    assert location == reverse("qualification:result", args=[attempt.uuid])
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.SUBMITTED and attempt.answers["q1"] == "square"


# --- 4: passed below a job's minimum score ------------------------------------------------------------


def test_a_worker_who_passed_below_full_marks_may_retake_and_the_best_score_counts(
    make_test: MakeTest, worker: Worker, worker_client: Client
) -> None:
    test = make_test(pass_score=50, retry_delay=timedelta(0))
    submit_attempt(attempt=start(worker_client, test), worker=worker, answers=THREE_OF_FOUR)
    assert Grant.objects.get(worker=worker).score == 75
    page = worker_client.get(reverse("qualification:list")).content.decode()
    assert "Retake the test" in page and "2 of 3 attempts left" in page
    retake = start_attempt(test=test, worker=worker)
    assert retake.number == 2
    submit_attempt(attempt=retake, worker=worker, answers=TWO_OF_FOUR)  # passes again, lower
    assert Grant.objects.get(worker=worker).score == 75
    last = start_attempt(test=test, worker=worker)
    submit_attempt(attempt=last, worker=worker, answers=RIGHT)
    assert Grant.objects.get(worker=worker).score == 100
    assert list_tests_for_worker(worker)[0].allowance.refusal == (
        "You have already passed “Sentiment basics” with a score of 100."
    )


# --- 15: retry times, overdue attempts and late submits -----------------------------------------------


def test_the_retry_time_shown_is_never_before_the_real_one() -> None:
    ends = [T0 + timedelta(seconds=35)]
    allowance = attempt_policy(
        test_name="T",
        is_open=True,
        max_attempts=3,
        retry_delay=timedelta(minutes=1),
        attempt_ends=ends,
        attempts_used=1,
        passed_score=None,
        now=T0 + timedelta(seconds=40),
    )
    assert allowance.retry_at == datetime(2025, 3, 1, 12, 1, 35, tzinfo=UTC)
    assert allowance.refusal == "You can try “T” again from 2025-03-01 12:02 UTC."


def test_an_overdue_open_attempt_counts_as_ended_on_the_list(make_test: MakeTest, worker: Worker) -> None:
    test = make_test(retry_delay=timedelta(minutes=1))
    attempt = start_attempt(test=test, worker=worker)
    Attempt.objects.filter(pk=attempt.pk).update(deadline=timezone.now() - timedelta(seconds=30))
    (card,) = list_tests_for_worker(worker)
    assert not card.can_start and card.allowance.refusal.startswith("You can try “Sentiment basics” again from")
    with pytest.raises(AttemptRefused, match="again from"):
        start_attempt(test=test, worker=worker)


def test_a_late_submit_says_that_time_ran_out_once(make_test: MakeTest, worker_client: Client) -> None:
    attempt = start(worker_client, make_test())
    Attempt.objects.filter(pk=attempt.pk).update(deadline=timezone.now() - timedelta(minutes=1))
    response = worker_client.post(reverse("qualification:submit", args=[attempt.uuid]), {"q-q1": "pos"}, follow=True)
    body = response.content.decode()
    assert body.count("Time ran out before you submitted; this attempt counts as failed.") == 1
    assert [str(m) for m in get_messages(response.wsgi_request)] == []


# --- 6: a submit URL reached by GET -------------------------------------------------------------------


def test_a_get_on_submit_goes_back_to_the_attempt(make_test: MakeTest, worker_client: Client) -> None:
    attempt = start(worker_client, make_test())
    response = worker_client.get(reverse("qualification:submit", args=[attempt.uuid]))
    assert response.status_code == 302
    assert response["Location"] == reverse("qualification:attempt", args=[attempt.uuid])
    attempt.refresh_from_db()
    assert attempt.state == AttemptState.OPEN
