"""The labeling pages' keys in a real browser (Playwright driving Debian's Chromium, as ``test_browser_shapes``).

The page's shortcuts (1-9, Enter, Space on drawing pages) act only where focus is on the page itself, a label
choice or the drawing: on a button, link or toggle the browser does what that control does, and Tab is left to
the browser so a keyboard reaches every control, the highlighted item following focus.
Database checks run after the browser has closed (Playwright's sync API keeps an event loop in this thread).
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

from django.test import Client

from tasks.models import Answer, Assignment, AssignmentState, Job, JobState, TaskKind
from tasks.services.imports import import_items
from tasks.services.pool import assign_next_hit
from tasks.services.publishing import publish_job
from tests.conftest import SYSTEM
from tests.factories import ItemFactory, JobFactory
from tests.tasks.test_browser_shapes import CHROMIUM, SVG, pytestmark  # noqa: F401  (skips without chromium)
from workforce.models import Worker

IMAGE = f"data:image/svg+xml;base64,{SVG}"
SHORT = 5000  # ms: how long a test waits for something that should happen at once


def new_job(**fields: Any) -> Job:
    """A draft job (``JobFactory``, typed as the model it makes)."""
    return cast(Job, JobFactory(state=JobState.DRAFT, **fields))


def session_of(worker: Worker) -> str:
    assert worker.user is not None
    client = Client()
    client.force_login(worker.user)
    return client.cookies["sessionid"].value


@contextmanager
def worker_browser(live_server: Any, worker: Worker, **context: Any) -> Iterator[tuple[Any, Any, list[str]]]:
    """(page, browser context, events): events lists page errors, console errors and the POSTs sent."""
    from playwright.sync_api import sync_playwright

    session = session_of(worker)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context.setdefault("viewport", {"width": 1000, "height": 900})
        ctx = browser.new_context(**context)
        ctx.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
        page = ctx.new_page()
        page.set_default_timeout(15000)
        events: list[str] = []
        page.on("pageerror", lambda exc: events.append(f"pageerror: {exc}"))
        page.on("console", lambda m: events.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
        page.on("request", lambda r: events.append(f"POST {r.url}") if r.method == "POST" else None)
        try:
            yield page, ctx, events
        finally:
            browser.close()


def posts(events: list[str]) -> list[str]:
    return [e for e in events if e.startswith("POST ")]


def lease_page(job: Job, worker: Worker, **kw: Any) -> tuple[str, Assignment]:
    lease = assign_next_hit(job=job, worker=worker, **kw)
    return f"/work/tasks/{lease.uuid}/", lease


def box_job() -> Job:
    job = new_job(task_kind=TaskKind.IMAGE_BOXES, labels=["car", "person"])
    for _ in range(3):
        ItemFactory(job=job, payload={"image_url": IMAGE, "width": 400, "height": 300})
    return publish_job(job=job, actor=SYSTEM)


def press_and_wait_for_post(page: Any, key: str) -> str:
    """Press ``key`` on what has focus; the URL of the POST it sends, once its answer has arrived."""
    with page.expect_request(lambda r: r.method == "POST", timeout=SHORT) as sent:
        page.keyboard.press(key)
    sent.value.response()
    return str(sent.value.url)


# --- Enter and Space on a control do what the control does -----------------------------------------------


def test_enter_on_the_skip_button_skips_the_task_instead_of_submitting_the_picked_label(
    make_published_job: Callable[..., Job], make_worker: Callable[..., Worker], live_server: Any
) -> None:
    job = make_published_job(items=3, instructions="Read it.")
    worker = make_worker()
    path, lease = lease_page(job, worker)
    with worker_browser(live_server, worker) as (page, _, _):
        page.goto(live_server.url + path)
        page.keyboard.press("1")  # a label picked, then the worker changes their mind
        page.focus("button[form=return-form]")
        url = press_and_wait_for_post(page, "Enter")
    assert url.endswith(f"/work/tasks/{lease.uuid}/return/"), url
    lease.refresh_from_db()
    assert lease.state == AssignmentState.RETURNED
    assert not Answer.objects.filter(assignment=lease).exists()


def test_enter_on_the_submit_button_and_on_a_label_choice_submits(
    make_published_job: Callable[..., Job], make_worker: Callable[..., Worker], live_server: Any
) -> None:
    job = make_published_job(items=3, redundancy=1)
    worker = make_worker()
    path, first = lease_page(job, worker)
    with worker_browser(live_server, worker) as (page, _, _):
        page.goto(live_server.url + path)
        page.locator("fieldset.item label.label-btn").nth(1).click()  # focus is now on that label's radio
        assert page.evaluate("document.activeElement.type") == "radio"
        by_label = press_and_wait_for_post(page, "Enter")
        page.wait_for_selector("#task-count:not(:empty)")  # the next task is on the page
        page.keyboard.press("1")
        page.focus("button.primary")
        by_button = press_and_wait_for_post(page, "Enter")
    assert by_label.endswith(f"/work/tasks/{first.uuid}/submit/"), by_label
    assert by_button.endswith("/submit/") and str(first.uuid) not in by_button, by_button
    assert Answer.objects.filter(assignment__worker=worker).count() == 2


def test_enter_on_the_instructions_toggle_folds_them_and_submits_nothing(
    make_published_job: Callable[..., Job], make_worker: Callable[..., Worker], live_server: Any
) -> None:
    job = make_published_job(items=3, instructions="Read it **twice**.")
    worker = make_worker()
    path, lease = lease_page(job, worker)
    with worker_browser(live_server, worker) as (page, _, events):
        page.goto(live_server.url + path)
        page.keyboard.press("2")
        page.focus("details.instructions summary")
        page.keyboard.press("Enter")
        page.wait_for_timeout(800)
        folded = page.evaluate("!document.querySelector('details.instructions').open")
        page.keyboard.press("Enter")
        page.wait_for_timeout(300)
        unfolded = page.evaluate("document.querySelector('details.instructions').open")
    assert folded and unfolded
    assert posts(events) == []
    lease.refresh_from_db()
    assert lease.state == AssignmentState.ACCEPTED


def test_enter_on_a_header_link_follows_it(
    make_published_job: Callable[..., Job], make_worker: Callable[..., Worker], live_server: Any
) -> None:
    job = make_published_job(items=3)
    worker = make_worker()
    path, lease = lease_page(job, worker)
    with worker_browser(live_server, worker) as (page, _, events):
        page.goto(live_server.url + path)
        page.keyboard.press("1")
        page.focus("nav a[href='/qualifications/']")
        with page.expect_navigation(timeout=SHORT):
            page.keyboard.press("Enter")
        url = page.url
    assert url == f"{live_server.url}/qualifications/"
    assert posts(events) == []
    lease.refresh_from_db()
    assert lease.state == AssignmentState.ACCEPTED


GOLD_CSV = (
    "external_id,text,gold\n"
    + "".join(f"n{i},normal {i},\n" for i in range(4))
    + "".join(f"g{i},gold {i},pos\n" for i in range(4))
)


def test_enter_on_the_training_continue_button_moves_on(make_worker: Callable[..., Worker], live_server: Any) -> None:
    job = new_job(training_mode=True, gold_rate=0.99, redundancy=1, instructions="Be kind.")
    import_items(job=job, stream=io.StringIO(GOLD_CSV), filename="items.csv", actor=SYSTEM)
    job = publish_job(job=job, actor=SYSTEM)
    worker = make_worker()
    path, lease = lease_page(job, worker, rng=random.Random(0))
    assert lease.hit.is_gold
    with worker_browser(live_server, worker) as (page, _, _):
        page.goto(live_server.url + path)
        page.keyboard.press("2")  # wrong: the gold answer is "pos"
        page.keyboard.press("Enter")
        page.wait_for_selector("section.feedback button")
        focused = page.evaluate("document.activeElement.textContent")
        page.keyboard.press("Enter")  # the focused Continue button
        page.wait_for_selector("section.feedback", state="detached", timeout=SHORT)
        shown = page.url
    assert focused == "Continue"
    assert str(lease.uuid) not in shown  # the next task is on the page


def test_enter_and_space_on_skip_in_a_box_job_skip_without_posting_a_drawing(
    make_worker: Callable[..., Worker], live_server: Any
) -> None:
    job = box_job()
    worker = make_worker()
    path, first = lease_page(job, worker)
    with worker_browser(live_server, worker) as (page, _, _):
        page.goto(live_server.url + path)
        page.wait_for_function("window.crowdShapes && window.crowdShapes.length === 1")
        page.focus("button[form=return-form]")
        by_enter = press_and_wait_for_post(page, "Enter")
        page.wait_for_url(lambda url: str(first.uuid) not in url)  # the drawing page reloads with the next task
        page.wait_for_function("window.crowdShapes && window.crowdShapes.length === 1")
        second = page.url.rstrip("/").rsplit("/", 1)[-1]
        page.focus("button[form=return-form]")
        by_space = press_and_wait_for_post(page, " ")
    assert by_enter.endswith(f"/work/tasks/{first.uuid}/return/"), by_enter
    assert by_space.endswith(f"/work/tasks/{second}/return/"), by_space
    assert not Answer.objects.filter(assignment__worker=worker).exists()
    states = set(Assignment.objects.filter(uuid__in=[first.uuid, second]).values_list("state", flat=True))
    assert states == {AssignmentState.RETURNED}


def test_the_class_menu_keeps_its_keys_and_the_drawing_takes_them_after_a_touch(
    make_worker: Callable[..., Worker], live_server: Any
) -> None:
    job = box_job()
    worker = make_worker()
    path, lease = lease_page(job, worker)
    with worker_browser(live_server, worker) as (page, _, events):
        page.goto(live_server.url + path)
        page.wait_for_function("window.crowdShapes && window.crowdShapes.length === 1")
        page.focus("select.shape-class")
        page.keyboard.press("Enter")  # a menu's key: nothing is sent
        page.wait_for_timeout(300)
        sent_from_menu = posts(events)
        box = page.locator("canvas.shape-canvas").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.6, steps=6)
        page.mouse.up()
        on_canvas = page.evaluate("document.activeElement.tagName")
        url = press_and_wait_for_post(page, "Enter")  # focus moved to the drawing: Enter submits it
    assert sent_from_menu == []
    assert on_canvas == "CANVAS"
    assert url.endswith(f"/work/tasks/{lease.uuid}/submit/"), url
    [answer] = Answer.objects.filter(assignment=lease)
    assert len(answer.value["shapes"]) == 1


# --- Tab is the browser's: it reaches the buttons, and the highlighted item follows focus -----------------


def test_tab_on_a_multi_item_page_reaches_every_item_and_the_buttons(
    make_published_job: Callable[..., Job], make_worker: Callable[..., Worker], live_server: Any
) -> None:
    job = make_published_job(items=6, items_per_hit=3)
    worker = make_worker()
    path, lease = lease_page(job, worker)
    where_js = (
        "(() => { const el = document.activeElement; const item = el.closest('fieldset.item');"
        " const items = [...document.querySelectorAll('fieldset.item')];"
        " return [el.tagName + ' ' + el.textContent.trim(), item ? items.indexOf(item) : -1,"
        " items.findIndex(f => f.classList.contains('active'))]; })()"
    )
    with worker_browser(live_server, worker) as (page, _, _):
        page.goto(live_server.url + path)
        reached: list[str] = []
        highlighted_with_focus: list[bool] = []
        after_digit: list[Any] = []
        for _ in range(20):
            page.keyboard.press("Tab")
            text, item, active = page.evaluate(where_js)
            reached.append(text if item < 0 else f"item {item + 1}")
            if item >= 0:
                highlighted_with_focus.append(item == active)
            if item == 1:  # on the second item's labels: a digit answers that item, then focus and highlight move on
                page.keyboard.press("2")
                after_digit = page.evaluate(where_js)
            if text.startswith("BUTTON Skip this task"):
                break
        page.keyboard.press("Shift+Tab")
        back = page.evaluate("document.activeElement.textContent.trim()")
        answers = page.evaluate(
            "[...document.querySelectorAll('fieldset.item')].map(f => (f.querySelector('input:checked') || {}).value)"
        )
    assert reached[-1] == "BUTTON Skip this task", reached
    assert {"item 1", "item 2"} <= set(reached), reached
    assert after_digit[1:] == [2, 2], after_digit  # on the third item's labels, highlighted
    assert any(r.startswith("BUTTON Submit") for r in reached), reached
    assert highlighted_with_focus and all(highlighted_with_focus)
    assert back.startswith("Submit")
    assert answers == [None, list(lease.job.labels)[1], None]


def test_the_key_help_on_a_multi_item_page_says_how_to_highlight_an_item(
    make_published_job: Callable[..., Job], make_worker: Callable[..., Worker], live_server: Any
) -> None:
    job = make_published_job(items=6, items_per_hit=3)
    worker = make_worker()
    path, _ = lease_page(job, worker)
    with worker_browser(live_server, worker) as (page, _, _):
        page.goto(live_server.url + path)
        help_text = page.inner_text("#task-form p.muted")
    assert "Tab moves on" not in help_text
    assert "click an item or Tab to its labels to highlight it" in help_text, help_text
