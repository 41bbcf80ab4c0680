"""Worker audit finding 6 in a real browser: after the session ends, the labeling page's script says the
worker was signed out, with a link to sign in, instead of "Could not reach the server" for ever.
Needs Debian's chromium package and Playwright (as ``test_browser_shapes``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.test import Client

from tasks.models import Answer, Job
from tasks.services.pool import assign_next_hit
from tests.tasks.test_browser_shapes import CHROMIUM, pytestmark  # noqa: F401  (skips without chromium)
from workforce.models import Worker


def test_a_submit_after_the_session_ended_says_so_with_a_sign_in_link(
    make_published_job: Callable[..., Job], make_worker: Callable[..., Worker], live_server: Any
) -> None:
    from playwright.sync_api import sync_playwright

    job = make_published_job(items=2)
    worker = make_worker()
    client = Client()
    client.force_login(worker.user)
    assignment = assign_next_hit(job=job, worker=worker)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context()
        context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
        page = context.new_page()
        page.goto(f"{live_server.url}/work/tasks/{assignment.uuid}/")
        context.clear_cookies(name="sessionid")  # the session ends (signed out elsewhere, or it timed out)
        page.keyboard.press("1")
        page.keyboard.press("Enter")
        page.wait_for_selector("#task-error a")
        error = page.inner_text("#task-error")
        link = page.get_attribute("#task-error a", "href") or ""
        browser.close()
    assert error.startswith("You were signed out, so nothing was saved.") and "Could not reach" not in error
    assert "/accounts/login/?next=" in link
    assert not Answer.objects.exists()
