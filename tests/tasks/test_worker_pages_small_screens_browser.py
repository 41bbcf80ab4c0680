"""The worker's pages on a phone and beyond the keyboard, in a real browser (Playwright driving Debian's Chromium,
as ``test_browser_shapes``): a finger draws, a 375px screen needs no sideways scrolling, text items keep their
line breaks whichever way they were rendered, a double click posts a drawing once, a refused layout submit
keeps what the worker typed, and no page logs a console error (the favicon).
Database checks run after the browser has closed (Playwright's sync API keeps an event loop in this thread).
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tasks.models import Answer, AssignmentState, Job
from tasks.services.imports import import_items
from tasks.services.pool import assign_next_hit
from tasks.services.publishing import publish_job
from tests.conftest import SYSTEM
from tests.factories import ItemFactory
from tests.tasks.test_browser_shapes import pytestmark  # noqa: F401  (transactional db; skips without chromium)
from tests.tasks.test_worker_keyboard_browser import GOLD_CSV, IMAGE, SHORT, box_job, new_job, posts, worker_browser
from workforce.models import Worker

PHONE = {"viewport": {"width": 375, "height": 740}, "has_touch": True, "is_mobile": True}
LONG_URL = "https://example.com/products/a-very-long-path-segment-0-with-tracking?utm_source=newsletter&utm_campaign=x"


def _touch_drag(ctx: Any, page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    cdp = ctx.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": start[0], "y": start[1]}]})
    for i in range(1, 11):
        point = {"x": start[0] + (end[0] - start[0]) * i / 10, "y": start[1] + (end[1] - start[1]) * i / 10}
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def _screen(page: Any, x: float, y: float) -> tuple[float, float]:
    """Where image pixel (x, y) is on the page, through the editor's own view transform."""
    sx, sy = page.evaluate(
        "([x, y]) => { const e = window.crowdShapes[0]; const s = e.toScreen(x, y);"
        " const r = e.canvas.getBoundingClientRect(); return [s[0] + r.left, s[1] + r.top]; }",
        [x, y],
    )
    return sx, sy


def _drawn(page: Any) -> list[dict[str, Any]]:
    shapes: list[dict[str, Any]] = json.loads(page.evaluate("window.crowdShapes[0].input.value"))["shapes"]
    return shapes


# --- touch ---------------------------------------------------------------------------------------------


def test_a_box_is_drawn_with_a_finger_on_a_phone_and_submitted(
    make_worker: Callable[..., Worker], live_server: Any
) -> None:
    job = box_job()
    worker = make_worker()
    lease = assign_next_hit(job=job, worker=worker)
    with worker_browser(live_server, worker, **PHONE) as (page, ctx, events):
        page.goto(f"{live_server.url}/work/tasks/{lease.uuid}/")
        page.wait_for_function("window.crowdShapes && window.crowdShapes.length === 1")
        _touch_drag(ctx, page, _screen(page, 60, 50), _screen(page, 240, 190))
        drawn = _drawn(page)
        page.tap("button.primary")
        page.wait_for_url(lambda url: str(lease.uuid) not in url)
    assert len(drawn) == 1, drawn
    assert drawn[0]["box"] == pytest.approx([60, 50, 240, 190], abs=2)
    assert [e for e in events if not e.startswith("POST")] == []
    [answer] = Answer.objects.filter(assignment=lease)
    assert answer.value["shapes"][0]["box"] == pytest.approx([60, 50, 240, 190], abs=2)


def test_a_polygon_is_drawn_by_tapping_its_vertices_and_the_first_one_again(
    make_worker: Callable[..., Worker], live_server: Any
) -> None:
    job = new_job(task_kind="image_polygons", labels=["car", "person"])
    ItemFactory(job=job, payload={"image_url": IMAGE, "width": 400, "height": 300})
    job = publish_job(job=job, actor=SYSTEM)
    worker = make_worker()
    lease = assign_next_hit(job=job, worker=worker)
    vertices = [(60, 50), (240, 60), (230, 190), (70, 180)]
    with worker_browser(live_server, worker, **PHONE) as (page, _, _):
        page.goto(f"{live_server.url}/work/tasks/{lease.uuid}/")
        page.wait_for_function("window.crowdShapes && window.crowdShapes.length === 1")
        for x, y in vertices:
            page.touchscreen.tap(*_screen(page, x, y))
        first = _screen(page, *vertices[0])
        page.touchscreen.tap(first[0] + 9, first[1] + 9)  # a fingertip near the first vertex closes the polygon
        drawn = _drawn(page)
    assert len(drawn) == 1, drawn
    assert [c for p in drawn[0]["points"] for c in p] == pytest.approx([c for v in vertices for c in v], abs=2)


# --- a 375px screen --------------------------------------------------------------------------------------


def _page_width(page: Any) -> int:
    width: int = page.evaluate("document.documentElement.scrollWidth")
    return width


def test_the_work_list_with_an_hourly_job_fits_a_375px_screen(
    make_published_job: Callable[..., Job], make_worker: Callable[..., Worker], live_server: Any
) -> None:
    job = make_published_job(items=2, description=f"See {LONG_URL}")
    Job.objects.filter(pk=job.pk).update(pay_mode="hourly", hourly_rate=Decimal("12.50"))
    worker = make_worker()
    with worker_browser(live_server, worker, **PHONE) as (page, _, _):
        page.goto(f"{live_server.url}/work/")
        list_width = _page_width(page)
        pay = page.inner_text(".job .pay")
        page.goto(f"{live_server.url}/work/scores/")
        scores_width = _page_width(page)
    assert "per hour" in pay
    assert list_width <= 375, list_width
    assert scores_width <= 375, scores_width


def test_a_text_item_with_a_long_url_fits_a_375px_screen(make_worker: Callable[..., Worker], live_server: Any) -> None:
    job = new_job(name="A job", instructions=f"Rules: {LONG_URL}")
    ItemFactory(job=job, payload={"text": f"Buy at {LONG_URL}"})
    job = publish_job(job=job, actor=SYSTEM)
    worker = make_worker()
    lease = assign_next_hit(job=job, worker=worker)
    with worker_browser(live_server, worker, **PHONE) as (page, _, _):
        page.goto(f"{live_server.url}/work/tasks/{lease.uuid}/")
        width = _page_width(page)
        text = page.inner_text(".item-text")
    assert width <= 375, width
    assert text == f"Buy at {LONG_URL}"  # broken across lines, not cut


def test_a_drawing_job_fits_a_375px_screen(make_worker: Callable[..., Worker], live_server: Any) -> None:
    job = box_job()
    worker = make_worker()
    lease = assign_next_hit(job=job, worker=worker)
    with worker_browser(live_server, worker, **PHONE) as (page, _, _):
        page.goto(f"{live_server.url}/work/tasks/{lease.uuid}/")
        page.wait_for_function("window.crowdShapes && window.crowdShapes.length === 1")
        width = _page_width(page)
    assert width <= 375, width


# --- line breaks -----------------------------------------------------------------------------------------


def test_text_items_keep_their_line_breaks_on_the_first_task_and_the_next(
    make_worker: Callable[..., Worker], live_server: Any
) -> None:
    job = new_job(redundancy=1)
    for n in range(2):
        ItemFactory(job=job, payload={"text": f"Customer: hello {n}\nAgent: go away\r\nCustomer: ok"})
    job = publish_job(job=job, actor=SYSTEM)
    worker = make_worker()
    lease = assign_next_hit(job=job, worker=worker)
    with worker_browser(live_server, worker) as (page, _, _):
        page.goto(f"{live_server.url}/work/tasks/{lease.uuid}/")
        first = page.inner_text(".item-text")
        page.keyboard.press("1")
        page.keyboard.press("Enter")
        page.wait_for_selector("#task-count:not(:empty)")  # the next task, built by the page's script
        second = page.inner_text(".item-text")
        white_space = page.evaluate("getComputedStyle(document.querySelector('.item-text')).whiteSpace")
    assert first.splitlines() == ["Customer: hello 0", "Agent: go away", "Customer: ok"], repr(first)
    assert second.splitlines() == ["Customer: hello 1", "Agent: go away", "Customer: ok"], repr(second)
    assert white_space == "pre-line"


# --- one post per submit ---------------------------------------------------------------------------------


def test_a_double_click_on_submit_in_a_drawing_job_posts_once(
    make_worker: Callable[..., Worker], live_server: Any
) -> None:
    job = box_job()
    worker = make_worker()
    lease = assign_next_hit(job=job, worker=worker)
    with worker_browser(live_server, worker) as (page, _, events):
        page.goto(f"{live_server.url}/work/tasks/{lease.uuid}/")
        page.wait_for_function("window.crowdShapes && window.crowdShapes.length === 1")
        page.locator("button.primary").dblclick()
        page.wait_for_url(lambda url: str(lease.uuid) not in url)
        page.wait_for_function("window.crowdShapes && window.crowdShapes.length === 1")
        notice = page.inner_text("main")
    submits = [p for p in posts(events) if "/submit/" in p]
    assert len(submits) == 1, submits
    assert "already saved" not in notice
    lease.refresh_from_db()
    assert lease.state == AssignmentState.SUBMITTED


# --- layout jobs -----------------------------------------------------------------------------------------

LAYOUT = (
    '<p>${text}</p><label><input type="radio" name="sentiment" value="pos">pos</label>'
    '<label><input type="radio" name="sentiment" value="neg">neg</label><textarea name="comment"></textarea>'
)


def test_a_refused_layout_submit_keeps_what_the_worker_typed_and_a_second_try_goes_through(
    make_worker: Callable[..., Worker], live_server: Any
) -> None:
    job = new_job(labels=["pos", "neg"], task_template=LAYOUT, answer_field="sentiment", redundancy=1)
    ItemFactory(job=job, payload={"text": "a review"})
    job = publish_job(job=job, actor=SYSTEM)
    worker = make_worker()
    lease = assign_next_hit(job=job, worker=worker)
    typed = "A long explanation the worker typed."
    with worker_browser(live_server, worker) as (page, _, events):
        page.goto(f"{live_server.url}/work/tasks/{lease.uuid}/")
        frame = page.frame_locator("#task-frame")
        frame.locator("textarea[name=comment]").fill(typed)
        frame.locator("#crowdops-submit").click()  # no sentiment picked: the server refuses
        page.wait_for_selector("#task-error:not([hidden])", timeout=SHORT)
        error = page.inner_text("#task-error")
        kept = frame.locator("textarea[name=comment]").input_value()
        still_here = page.url
        frame.locator("input[value=pos]").check()
        frame.locator("#crowdops-submit").click()
        page.wait_for_url(lambda url: str(lease.uuid) not in url, timeout=SHORT)
    assert kept == typed
    assert still_here.endswith(f"/work/tasks/{lease.uuid}/")
    assert error
    assert [e for e in events if not e.startswith("POST")] == [
        "console.error: Failed to load resource: the server responded with a status of 400 (Bad Request)"
    ]
    assert len([p for p in posts(events) if "/submit-layout/" in p]) == 2
    [answer] = Answer.objects.filter(assignment=lease)
    assert answer.value == "pos"


def test_a_missed_gold_question_in_a_layout_training_job_is_explained_before_the_next_task(
    make_worker: Callable[..., Worker], live_server: Any
) -> None:
    job = new_job(
        labels=["pos", "neg"],
        task_template=LAYOUT,
        answer_field="sentiment",
        redundancy=1,
        training_mode=True,
        gold_rate=0.99,
        instructions="Be kind.",
    )
    import_items(job=job, stream=io.StringIO(GOLD_CSV), filename="items.csv", actor=SYSTEM)
    job = publish_job(job=job, actor=SYSTEM)
    worker = make_worker()
    lease = assign_next_hit(job=job, worker=worker, rng=random.Random(0))
    assert lease.hit.is_gold
    with worker_browser(live_server, worker) as (page, _, _):
        page.goto(f"{live_server.url}/work/tasks/{lease.uuid}/")
        page.frame_locator("#task-frame").locator("input[value=neg]").check()  # the gold answer is "pos"
        page.frame_locator("#task-frame").locator("#crowdops-submit").click()
        page.wait_for_selector("section.feedback button")
        feedback = page.inner_text("section.feedback")
        page.keyboard.press("Enter")  # the focused Continue button
        page.wait_for_url(lambda url: str(lease.uuid) not in url, timeout=SHORT)
    assert "You answered neg; the correct answer is pos." in feedback


# --- console errors --------------------------------------------------------------------------------------


def test_worker_pages_log_no_console_errors_and_have_an_icon(
    make_published_job: Callable[..., Job], make_worker: Callable[..., Worker], live_server: Any
) -> None:
    job = make_published_job(items=2)
    worker = make_worker()
    lease = assign_next_hit(job=job, worker=worker)
    with worker_browser(live_server, worker) as (page, _, events):
        icons = []
        for path in ("/work/", f"/work/tasks/{lease.uuid}/", "/work/scores/", "/qualifications/"):
            page.goto(live_server.url + path)
            page.wait_for_timeout(300)
            href = page.get_attribute("link[rel=icon]", "href")
            icons.append(page.request.get(live_server.url + href).status if href else None)
    assert [e for e in events if not e.startswith("POST")] == []
    assert icons == [200, 200, 200, 200]
