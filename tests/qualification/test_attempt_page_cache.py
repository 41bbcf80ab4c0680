"""Back after submitting a qualification test shows its result, never a live copy of the test: the attempt
page is not stored (``Cache-Control: no-store``), and a copy a browser restores from memory anyway
(back/forward cache) reloads itself. The browser tests need Debian's chromium and Playwright."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from qualification.models import Attempt, AttemptState, QualificationTest
from qualification.services import create_test, start_attempt
from qualification.specs import QuestionSpec
from tests.conftest import SYSTEM
from tests.tasks.test_browser_shapes import CHROMIUM
from tests.tasks.test_browser_shapes import pytestmark as browser_marks
from workforce.models import Worker

MakeWorker = Callable[..., Worker]


def in_a_browser(test: Callable[..., None]) -> Callable[..., None]:
    """A transactional database for the live server; skipped without chromium (as ``test_browser_shapes``)."""
    for mark in reversed(browser_marks):
        test = mark(test)
    return test


def _test() -> QualificationTest:
    return create_test(
        actor=SYSTEM,
        name="Cache test",
        questions=[QuestionSpec(identifier="q1", prompt="Pick pos", accepted=("pos",))],
        task_kind="text_classification",
        labels=["pos", "neg"],
        pass_score=100,
        time_limit=timedelta(minutes=5),
        max_attempts=3,
    )


def _client(worker: Worker) -> Client:
    client = Client()
    client.force_login(worker.user)
    return client


@pytest.mark.django_db
def test_the_attempt_page_is_never_stored(make_worker: MakeWorker) -> None:
    worker = make_worker()
    attempt = start_attempt(test=_test(), worker=worker)
    response = _client(worker).get(reverse("qualification:attempt", args=[attempt.uuid]))
    assert response.status_code == 200 and 'id="test-form"' in response.content.decode()
    assert "no-store" in response["Cache-Control"]


@contextmanager
def _browser(live_server: Any, worker: Worker) -> Iterator[Any]:
    """A page signed in as ``worker`` (no database queries inside: Playwright runs an event loop)."""
    from playwright.sync_api import sync_playwright

    cookie = _client(worker).cookies["sessionid"].value
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context()
        context.add_cookies([{"name": "sessionid", "value": cookie, "url": live_server.url}])
        try:
            yield context.new_page()
        finally:
            browser.close()


@in_a_browser
def test_back_after_submitting_shows_the_result_not_a_live_test(make_worker: MakeWorker, live_server: Any) -> None:
    test = _test()
    worker = make_worker()
    with _browser(live_server, worker) as page:
        page.goto(f"{live_server.url}{reverse('qualification:list')}")
        page.locator(f"form[action='{reverse('qualification:start', args=[test.pk])}'] button").click()
        page.wait_for_selector("#test-form")
        page.check("input[name=q-q1][value=neg]")
        page.click("#test-form button.primary")
        page.wait_for_url("**/result/")
        page.go_back()
        page.wait_for_load_state()
        page.wait_for_timeout(800)
        live_forms = page.locator("#test-form").count()
        url = page.url
    assert live_forms == 0 and url.endswith("/result/"), url
    assert Attempt.objects.get(worker=worker).score == 0


@in_a_browser
def test_a_test_page_restored_from_memory_loads_again(make_worker: MakeWorker, live_server: Any) -> None:
    """Whatever the headers, a browser may restore the page from its back/forward cache: the script reloads it,
    and the server, seeing the attempt closed, shows the result."""
    worker = make_worker()
    attempt = start_attempt(test=_test(), worker=worker)
    url = f"{live_server.url}{reverse('qualification:attempt', args=[attempt.uuid])}"
    with _browser(live_server, worker) as page:
        page.goto(url)
        page.wait_for_selector("#test-form")
        other = page.context.new_page()  # the worker submits the test in another tab
        other.goto(url)
        other.check("input[name=q-q1][value=pos]")
        other.click("#test-form button.primary")
        other.wait_for_url("**/result/")
        page.evaluate("window.dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}))")
        page.wait_for_url("**/result/", timeout=5000)
        live_forms = page.locator("#test-form").count()
    assert live_forms == 0
    assert Attempt.objects.get(pk=attempt.pk).state != AttemptState.OPEN
