"""The worker's qualification pages, through the test client."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from qualification.models import Attempt, AttemptState, Grant, QualificationTest
from tests.factories import UserFactory, WorkerFactory
from tests.qualification.conftest import RIGHT
from workforce.models import Worker

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.qualification.urls")]
MakeTest = Callable[..., QualificationTest]


def start(client: Client, test: QualificationTest) -> Attempt:
    response = client.post(reverse("qualification:start", args=[test.pk]))
    attempt = Attempt.objects.get(test=test)
    assert response.status_code == 302
    assert response["Location"] == reverse("qualification:attempt", args=[attempt.uuid])
    return attempt


def post_answers(client: Client, attempt: Attempt, answers: dict[str, str]) -> str:
    response = client.post(
        reverse("qualification:submit", args=[attempt.uuid]), {f"q-{k}": v for k, v in answers.items()}
    )
    assert response.status_code == 302
    return response["Location"]


def test_pages_are_only_for_internal_workers(make_test: MakeTest) -> None:
    test = make_test()
    anonymous = Client().get(reverse("qualification:list"))
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    staff = Client()
    staff.force_login(UserFactory(is_staff=True))
    assert staff.get(reverse("qualification:list")).status_code == 403
    # a signed-in account with no worker (an MTurk worker linked by an invitation is a pool worker: test_invitations)
    client = Client()
    client.force_login(UserFactory(is_staff=False))
    assert client.post(reverse("qualification:start", args=[test.pk])).status_code == 403
    assert not Attempt.objects.exists()


def test_a_worker_takes_a_test_from_the_list_to_the_result(
    make_test: MakeTest, worker: Worker, worker_client: Client
) -> None:
    test = make_test()
    page = worker_client.get(reverse("qualification:list")).content.decode()
    assert "Sentiment basics" in page and "Start the test" in page and "3 of 3 attempts left" in page
    attempt = start(worker_client, test)
    page = worker_client.get(reverse("qualification:attempt", args=[attempt.uuid])).content.decode()
    assert 'id="timer"' in page and "Question 4 of 4" in page
    assert 'type="radio" name="q-q1" value="pos"' in page
    result_url = post_answers(worker_client, attempt, RIGHT)
    assert result_url == reverse("qualification:result", args=[attempt.uuid])
    result = worker_client.get(result_url).content.decode()
    assert "Your score: <strong>100%</strong>" in result and "You passed." in result
    assert Grant.objects.filter(worker=worker, test=test).exists()
    assert "Passed · 100%" in worker_client.get(reverse("qualification:list")).content.decode()


def test_a_submit_after_a_deadline_set_in_the_past_is_refused(
    make_test: MakeTest, worker: Worker, worker_client: Client
) -> None:
    test = make_test()
    attempt = start(worker_client, test)
    Attempt.objects.filter(pk=attempt.pk).update(deadline=timezone.now() - timedelta(minutes=1))
    # The test page no longer opens ...
    page = worker_client.get(reverse("qualification:attempt", args=[attempt.uuid]))
    assert page.status_code == 302
    # ... and answers posted anyway are not graded.
    result_url = post_answers(worker_client, attempt, RIGHT)
    attempt.refresh_from_db()
    assert (attempt.state, attempt.score, attempt.passed) == (AttemptState.EXPIRED, 0.0, False)
    assert not Grant.objects.exists()
    result = worker_client.get(result_url).content.decode()
    assert "Time ran out" in result


def test_a_refused_start_shows_the_sentence(make_test: MakeTest, worker: Worker, worker_client: Client) -> None:
    test = make_test(max_attempts=1)
    attempt = start(worker_client, test)
    post_answers(worker_client, attempt, {"q1": "neg"})
    response = worker_client.post(reverse("qualification:start", args=[test.pk]), follow=True)
    assert "You have used all 1 attempt at “Sentiment basics”." in response.content.decode()
    assert Attempt.objects.count() == 1


def test_another_workers_attempt_is_not_found(make_test: MakeTest, worker_client: Client) -> None:
    other = WorkerFactory()
    client = Client()
    client.force_login(other.user)
    attempt = start(client, make_test())
    assert worker_client.get(reverse("qualification:attempt", args=[attempt.uuid])).status_code == 404
    assert worker_client.post(reverse("qualification:submit", args=[attempt.uuid])).status_code == 404


def test_no_page_reveals_the_correct_answers(make_test: MakeTest, worker: Worker, worker_client: Client) -> None:
    test = make_test()
    pages = [worker_client.get(reverse("qualification:list")).content.decode()]
    attempt = start(worker_client, test)
    test_page = worker_client.get(reverse("qualification:attempt", args=[attempt.uuid])).content.decode()
    pages.append(test_page)
    post_answers(worker_client, attempt, {"q1": "neg"})
    pages.append(worker_client.get(reverse("qualification:result", args=[attempt.uuid])).content.decode())
    for html in pages:
        lowered = html.lower()
        # Accepted answers that are not shown as options (free text, a number).
        assert "zanzibar" not in lowered
        assert "42.75" not in html
        assert "correct" not in lowered and "accepted" not in lowered
    # The right option's input is built exactly like the wrong ones: only value and label differ.
    inputs = re.findall(r'<input type="radio" name="q-q2" value="([^"]+)"([^>]*)>', test_page)
    assert [value for value, _ in inputs] == ["c-a", "c-b", "c-c"]
    assert len({rest for _, rest in inputs}) == 1
    assert "data-" not in re.sub(r'data-seconds-left="\d+"', "", test_page)
