"""Boxes and polygons drawn with the keyboard alone (WCAG 2.1.1), in a real browser (Playwright driving Debian's
Chromium, as ``test_browser_shapes``): Tab reaches the drawing, arrows move a crosshair in image pixels (Shift:
ten), Enter or Space places corners and points, Tab selects shapes, Delete removes them, C opens the class
menu, and a live region says what happened. The stored answer is checked on the server, in image pixels.
Database checks run after the browser has closed (Playwright's sync API keeps an event loop in this thread).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.urls import reverse

from tasks.models import Answer, Hit, TaskKind
from tasks.services.mturk_collect import collect_mturk_work
from tasks.services.mturk_publishing import publish_mturk_hits
from tasks.services.pool import assign_next_hit
from tasks.services.publishing import publish_job
from tests.conftest import SYSTEM
from tests.factories import ItemFactory
from tests.marketplaces.mturk_standin import MTurkStandIn
from tests.tasks.test_browser_shapes import pytestmark  # noqa: F401  (transactional db; skips without chromium)
from tests.tasks.test_worker_keyboard_browser import IMAGE, SHORT, box_job, new_job, posts, worker_browser
from workforce.marketplaces.mturk import MTurkMarketplace
from workforce.models import Worker

READY = "window.crowdShapes && window.crowdShapes.length >= 1"


def _press(page: Any, key: str, times: int = 1) -> None:
    for _ in range(times):
        page.keyboard.press(key)


def _status(page: Any, index: int = 0) -> str:
    text: str = page.evaluate(f"document.querySelectorAll('.shape-status')[{index}].textContent")
    return text.strip()


def _active(page: Any) -> str:
    name: str = page.evaluate("document.activeElement.tagName")
    return name


def _drawn(page: Any, index: int = 0) -> list[dict[str, Any]]:
    shapes: list[dict[str, Any]] = json.loads(page.evaluate(f"window.crowdShapes[{index}].input.value"))["shapes"]
    return shapes


def _tab_into_the_drawing(page: Any) -> None:
    """From the class menu, the control before it, with Tab: as a keyboard gets there."""
    page.focus("select.shape-class")
    page.keyboard.press("Tab")
    assert _active(page) == "CANVAS"


def polygon_job() -> Any:
    job = new_job(task_kind=TaskKind.IMAGE_POLYGONS, labels=["car", "person"])
    ItemFactory(job=job, payload={"image_url": IMAGE, "width": 400, "height": 300})
    return publish_job(job=job, actor=SYSTEM)


def test_the_drawing_is_reachable_by_tab_with_a_focus_ring_and_keyboard_help(
    make_worker: Callable[..., Worker], live_server: Any
) -> None:
    worker = make_worker()
    lease = assign_next_hit(job=box_job(), worker=worker)
    with worker_browser(live_server, worker) as (page, _, events):
        page.goto(f"{live_server.url}/work/tasks/{lease.uuid}/")
        page.wait_for_function(READY)
        _tab_into_the_drawing(page)
        ring = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        name = page.evaluate("document.activeElement.getAttribute('aria-label')")
        help_text = page.evaluate(
            "document.getElementById(document.activeElement.getAttribute('aria-describedby')).textContent"
        )
        live = page.evaluate("document.querySelector('.shape-status').getAttribute('aria-live')")
        page.keyboard.press("Enter")  # reached with Tab, Enter draws (a corner) and submits nothing
        page.wait_for_timeout(300)
        status = _status(page)
    assert ring == "solid"
    assert name == "Image to draw boxes on"
    assert "arrows move the crosshair" in help_text and "Enter" in help_text, help_text
    assert live == "polite"
    assert status == "First corner at 200, 150. Move to the opposite corner and press Enter."
    assert posts(events) == []


def test_boxes_are_drawn_relabelled_moved_and_deleted_with_the_keyboard_and_submitted(
    make_worker: Callable[..., Worker], live_server: Any
) -> None:
    worker = make_worker()
    lease = assign_next_hit(job=box_job(), worker=worker)
    said: list[str] = []
    with worker_browser(live_server, worker) as (page, _, events):
        page.goto(f"{live_server.url}/work/tasks/{lease.uuid}/")
        page.wait_for_function(READY)
        _tab_into_the_drawing(page)  # the crosshair starts at the image's middle, (200, 150)
        _press(page, "Shift+ArrowLeft", 5)
        _press(page, "Shift+ArrowUp", 3)
        page.keyboard.press("Enter")  # first corner (150, 120)
        _press(page, "Shift+ArrowRight", 4)
        _press(page, "Shift+ArrowDown", 3)
        _press(page, "ArrowRight", 2)
        _press(page, "ArrowLeft", 2)
        page.keyboard.press(" ")  # opposite corner (190, 150)
        said.append(_status(page))
        page.keyboard.press("c")  # the class menu, for the new box
        in_menu = _active(page)
        page.keyboard.press("ArrowDown")  # "person"
        page.keyboard.press("Enter")  # back to the drawing
        back = _active(page)
        relabelled = _drawn(page)
        _press(page, "Shift+ArrowRight", 10)
        _press(page, "Shift+ArrowDown", 5)
        page.keyboard.press("Enter")  # (290, 200)
        _press(page, "Shift+ArrowRight", 5)
        _press(page, "Shift+ArrowDown", 5)
        page.keyboard.press("Enter")  # (340, 250): a second box, in the class now chosen
        said.append(_status(page))
        page.keyboard.press("Tab")  # the first box
        said.append(_status(page))
        page.keyboard.press("Shift+ArrowRight")  # moved 10 pixels right
        page.keyboard.press("Tab")  # the second box
        page.keyboard.press("Delete")
        said.append(_status(page))
        drawn = _drawn(page)
        with page.expect_navigation(timeout=SHORT):
            page.keyboard.press("Control+Enter")
    assert in_menu == "SELECT" and back == "CANVAS"
    assert relabelled == [{"label": "person", "box": [150, 120, 190, 150]}]
    assert said == [
        "Box 1 added, 40 by 30, car.",
        "Box 2 added, 50 by 50, person.",
        "Box 1 of 2 selected, person, 40 by 30 at 150, 120. Arrows move it, Delete removes it, C changes its class.",
        "Box 2 deleted, 1 shape left.",
    ], said
    assert drawn == [{"label": "person", "box": [160, 120, 200, 150]}]
    assert [e for e in events if not e.startswith("POST")] == []
    [answer] = Answer.objects.filter(assignment=lease)
    assert answer.value == {"shapes": [{"label": "person", "box": [160, 120, 200, 150]}]}


def test_polygons_are_drawn_closed_and_deleted_with_the_keyboard_and_submitted_from_the_submit_button(
    make_worker: Callable[..., Worker], live_server: Any
) -> None:
    worker = make_worker()
    lease = assign_next_hit(job=polygon_job(), worker=worker)
    said: list[str] = []
    with worker_browser(live_server, worker) as (page, _, events):
        page.goto(f"{live_server.url}/work/tasks/{lease.uuid}/")
        page.wait_for_function(READY)
        _tab_into_the_drawing(page)
        _press(page, "Shift+ArrowLeft", 5)
        _press(page, "Shift+ArrowUp", 5)
        page.keyboard.press("Enter")  # (150, 100)
        said.append(_status(page))
        _press(page, "Shift+ArrowRight", 10)
        page.keyboard.press(" ")  # (250, 100)
        _press(page, "Shift+ArrowDown", 10)
        page.keyboard.press("Enter")  # (250, 200)
        _press(page, "Shift+ArrowLeft", 10)
        page.keyboard.press("Enter")  # (150, 200)
        _press(page, "Shift+ArrowUp", 10)
        page.keyboard.press("Enter")  # on the first point: closes the polygon
        said.append(_status(page))
        _press(page, "Shift+ArrowRight", 20)
        page.keyboard.press("Enter")  # (350, 100)
        page.keyboard.press("Escape")  # dropped
        said.append(_status(page))
        page.keyboard.press("Enter")  # (350, 100) again
        _press(page, "Shift+ArrowRight", 3)
        page.keyboard.press("Enter")  # (380, 100)
        _press(page, "Shift+ArrowDown", 3)
        page.keyboard.press("Enter")  # (380, 130)
        page.keyboard.press("Shift+Enter")  # closes it
        said.append(_status(page))
        page.keyboard.press("Tab")  # the first polygon
        page.keyboard.press("Tab")  # the second
        said.append(_status(page))
        page.keyboard.press("Backspace")
        said.append(_status(page))
        drawn = _drawn(page)
        page.keyboard.press("Tab")  # the remaining polygon
        page.keyboard.press("Tab")  # past the last shape: out of the drawing, to Submit
        on = page.evaluate("document.activeElement.textContent.trim()")
        with page.expect_navigation(timeout=SHORT):
            page.keyboard.press("Enter")
    assert said == [
        "Point 1 at 150, 100, polygon started.",
        "Polygon 1 closed, 4 points, car.",
        "Polygon dropped.",
        "Polygon 2 closed, 3 points, car.",
        "Polygon 2 of 2 selected, car, 3 points. Arrows move it, Delete removes it, C changes its class.",
        "Polygon 2 deleted, 1 shape left.",
    ], said
    square = [[150, 100], [250, 100], [250, 200], [150, 200]]
    assert drawn == [{"label": "car", "points": square}]
    assert on.startswith("Submit"), on
    assert [e for e in events if not e.startswith("POST")] == []
    [answer] = Answer.objects.filter(assignment=lease)
    assert answer.value == {"shapes": [{"label": "car", "points": square}]}


def test_keys_draw_on_the_focused_image_of_a_two_image_page_and_a_click_gives_enter_back_to_submit(
    make_worker: Callable[..., Worker], live_server: Any
) -> None:
    job = new_job(task_kind=TaskKind.IMAGE_BOXES, labels=["car", "person"], items_per_hit=2)
    for _ in range(2):
        ItemFactory(job=job, payload={"image_url": IMAGE, "width": 400, "height": 300})
    worker = make_worker()
    lease = assign_next_hit(job=publish_job(job=job, actor=SYSTEM), worker=worker)
    with worker_browser(live_server, worker) as (page, _, events):
        page.goto(f"{live_server.url}/work/tasks/{lease.uuid}/")
        page.wait_for_function("window.crowdShapes && window.crowdShapes.length === 2")
        scripts = page.evaluate("document.querySelectorAll('script[src*=shapes_keyboard]').length")
        page.locator("select.shape-class").nth(1).focus()
        page.keyboard.press("Tab")  # the second image's drawing
        page.keyboard.press("2")  # new shapes there are "person"
        page.keyboard.press("Enter")  # first corner (200, 150)
        _press(page, "Shift+ArrowRight", 2)
        _press(page, "Shift+ArrowDown", 2)
        page.keyboard.press("Enter")
        said = _status(page, 1)
        first, second = _drawn(page, 0), _drawn(page, 1)
        box = page.locator("canvas.shape-canvas").nth(1).bounding_box()
        page.mouse.click(box["x"] + 5, box["y"] + 5)  # the pointer's now: Enter submits, as before
        with page.expect_request(lambda r: r.method == "POST", timeout=SHORT) as sent:
            page.keyboard.press("Enter")
        sent.value.response()
        url = sent.value.url
    assert scripts == 1
    assert said == "Box 1 added, 20 by 20, person.", said
    assert first == [] and second == [{"label": "person", "box": [200, 150, 220, 170]}]
    assert url.endswith(f"/work/tasks/{lease.uuid}/submit/"), url
    assert [e for e in events if not e.startswith("POST")] == []


def test_a_mturk_worker_draws_a_box_with_the_keyboard_and_it_reaches_mturk(
    mturk: MTurkMarketplace, standin: MTurkStandIn, live_server: Any
) -> None:
    job = new_job(marketplace="mturk", task_kind=TaskKind.IMAGE_BOXES, labels=["car", "person"])
    ItemFactory(job=job, payload={"image_url": IMAGE, "width": 400, "height": 300})
    job = publish_job(job=job, actor=SYSTEM)
    publish_mturk_hits(job=job, actor=SYSTEM, connector=mturk)
    hit = Hit.objects.get(job=job)
    assignment_id = standin.state.accept(str(hit.external_id), "AWORKERK")
    query = urlencode(
        {"assignmentId": assignment_id, "hitId": hit.external_id, "workerId": "AWORKERK", "turkSubmitTo": standin.url}
    )
    from playwright.sync_api import sync_playwright

    from tests.tasks.test_browser_shapes import CHROMIUM

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{live_server.url}{reverse('mturk-task')}?{query}")
        page.wait_for_function(READY)
        _tab_into_the_drawing(page)
        _press(page, "Shift+ArrowLeft", 14)
        _press(page, "Shift+ArrowUp", 10)
        page.keyboard.press("Enter")  # (60, 50)
        _press(page, "Shift+ArrowRight", 18)
        _press(page, "Shift+ArrowDown", 14)
        page.keyboard.press("Enter")  # (240, 190)
        said = _status(page)
        page.keyboard.press("Control+Enter")  # posts the page, whose answer page forwards itself to MTurk
        page.wait_for_url(f"{standin.url}/**")
        browser.close()
    assert errors == []
    assert said == "Box 1 added, 180 by 140, car.", said
    collect_mturk_work(actor=SYSTEM, connector=mturk)
    [answer] = Answer.objects.filter(job=job)
    assert answer.value["shapes"] == [{"label": "car", "box": [60, 50, 240, 190]}]


@pytest.mark.parametrize("kind", [TaskKind.IMAGE_BOXES, TaskKind.IMAGE_POLYGONS])
def test_a_preview_has_no_keyboard_drawing_help(kind: str) -> None:
    from django.template.loader import render_to_string

    job = new_job(task_kind=kind, labels=["car"])
    item = ItemFactory(job=job, payload={"image_url": IMAGE, "width": 400, "height": 300})
    item.place = 0
    html = render_to_string(
        "tasks/_shape_editor.html", {"job": job, "item": item, "labels": [(1, "car")], "preview": True}
    )
    assert "shapes_keyboard.js" not in html and "shape-status" not in html
    drawing = render_to_string("tasks/_shape_editor.html", {"job": job, "item": item, "labels": [(1, "car")]})
    assert drawing.count("shapes_keyboard.js") == 1 and 'role="status"' in drawing
