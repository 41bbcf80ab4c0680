"""A real browser (Playwright driving Debian's headless Chromium) draws on the labeling page and submits.

Needs the ``chromium`` package (``/usr/bin/chromium``; ``.ci/run`` installs it) and the ``playwright``
Python package. Database checks run after the browser has closed: Playwright's sync API keeps an event
loop in this thread, under which Django refuses ORM calls.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import reverse

from tasks.models import Answer, Hit, JobState, MTurkPageSubmission, TaskKind
from tasks.services.mturk_collect import collect_mturk_work
from tasks.services.mturk_publishing import publish_mturk_hits
from tasks.services.pool import assign_next_hit
from tasks.services.publishing import publish_job
from tests.factories import ItemFactory, JobFactory
from tests.marketplaces.mturk_standin import MTurkStandIn
from workforce.audit import Actor
from workforce.marketplaces.mturk import MTurkMarketplace
from workforce.models import Worker

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason="needs Debian's chromium package (apt-get install chromium)"
    ),
]
SVG = base64.b64encode(
    b'<svg xmlns="http://www.w3.org/2000/svg" width="400" height="300"><rect width="400" height="300" fill="#8ab"/>'
    b'<rect x="50" y="40" width="200" height="160" fill="#c33"/></svg>'
).decode()


def _task_url(kind: str, make_worker: Callable[..., Worker], live_server: Any) -> tuple[str, str, int]:
    job = JobFactory(state=JobState.DRAFT, task_kind=kind, labels=["car", "person"])
    ItemFactory(job=job, payload={"image_url": f"data:image/svg+xml;base64,{SVG}", "width": 400, "height": 300})
    job = publish_job(job=job, actor=Actor.system("test"))
    worker = make_worker()
    client = Client()
    client.force_login(worker.user)
    assignment = assign_next_hit(job=job, worker=worker)
    return f"{live_server.url}/work/tasks/{assignment.uuid}/", client.cookies["sessionid"].value, job.pk


def _run(url: str, session: str | None, live_server: Any, steps: Callable[[Any], None]) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1000, "height": 900})
        if session is not None:
            context.add_cookies([{"name": "sessionid", "value": session, "url": live_server.url}])
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.wait_for_function("window.crowdShapes && window.crowdShapes.length === 1")
        steps(page)
        browser.close()
    assert errors == []


def _screen(page: Any, x: float, y: float) -> tuple[float, float]:
    """Where image pixel (x, y) is on the page, through the editor's own view transform."""
    return tuple(
        page.evaluate(
            "([x, y]) => { const e = window.crowdShapes[0]; const s = e.toScreen(x, y);"
            " const r = e.canvas.getBoundingClientRect(); return [s[0] + r.left, s[1] + r.top]; }",
            [x, y],
        )
    )


def test_a_worker_draws_boxes_deletes_one_and_submits(make_worker: Callable[..., Worker], live_server: Any) -> None:
    url, session, job_id = _task_url(TaskKind.IMAGE_BOXES, make_worker, live_server)

    def steps(page: Any) -> None:
        for (x1, y1), (x2, y2) in (((50, 40), (250, 200)), ((300, 220), (380, 290))):
            page.mouse.move(*_screen(page, x1, y1))
            page.mouse.down()
            page.mouse.move(*_screen(page, x2, y2), steps=8)
            page.mouse.up()
        page.keyboard.press("Delete")  # the second box is selected after drawing it
        page.mouse.click(*_screen(page, 150, 120))  # select the first box
        page.keyboard.press("2")  # its class becomes "person"
        with page.expect_navigation():
            page.keyboard.press("Enter")

    _run(url, session, live_server, steps)
    [answer] = Answer.objects.filter(job_id=job_id)
    [shape] = answer.value["shapes"]
    assert shape["label"] == "person"
    assert shape["box"] == pytest.approx([50, 40, 250, 200], abs=1.5)


def test_a_worker_draws_a_polygon_and_submits(make_worker: Callable[..., Worker], live_server: Any) -> None:
    url, session, job_id = _task_url(TaskKind.IMAGE_POLYGONS, make_worker, live_server)
    vertices = [(60, 50), (240, 60), (230, 190), (70, 180)]

    def steps(page: Any) -> None:
        for x, y in vertices:
            page.mouse.click(*_screen(page, x, y))
        page.mouse.click(*_screen(page, *vertices[0]))  # clicking the first vertex closes the polygon
        with page.expect_navigation():
            page.keyboard.press("Enter")

    _run(url, session, live_server, steps)
    [answer] = Answer.objects.filter(job_id=job_id)
    [shape] = answer.value["shapes"]
    assert shape["label"] == "car"
    assert len(shape["points"]) == 4
    for (x, y), (px, py) in zip(vertices, shape["points"], strict=True):
        assert abs(x - px) <= 1.5 and abs(y - py) <= 1.5


def test_a_mturk_worker_draws_on_the_external_question_page_and_it_reaches_mturk(
    mturk: MTurkMarketplace, standin: MTurkStandIn, live_server: Any
) -> None:
    job = JobFactory(
        marketplace="mturk", state=JobState.DRAFT, task_kind=TaskKind.IMAGE_BOXES, labels=["car", "person"]
    )
    ItemFactory(job=job, payload={"image_url": f"data:image/svg+xml;base64,{SVG}", "width": 400, "height": 300})
    job = publish_job(job=job, actor=Actor.system("test"))
    publish_mturk_hits(job=job, actor=Actor.system("test"), connector=mturk)
    hit = Hit.objects.get(job=job)
    assignment_id = standin.state.accept(str(hit.external_id), "AWORKERA")
    query = urlencode(
        {"assignmentId": assignment_id, "hitId": hit.external_id, "workerId": "AWORKERA", "turkSubmitTo": standin.url}
    )

    def steps(page: Any) -> None:
        page.mouse.move(*_screen(page, 60, 50))
        page.mouse.down()
        page.mouse.move(*_screen(page, 240, 190), steps=8)
        page.mouse.up()
        page.keyboard.press("2")  # the new box is selected: its class becomes "person"
        page.keyboard.press("Enter")  # posts the page, whose answer page forwards itself to MTurk
        page.wait_for_url(f"{standin.url}/**")

    _run(f"{live_server.url}{reverse('mturk-task')}?{query}", None, live_server, steps)
    assert not Answer.objects.filter(job=job).exists()  # the page keeps a claim; MTurk's list records the work
    collect_mturk_work(actor=Actor.system("test"), connector=mturk)
    assert MTurkPageSubmission.objects.get(assignment_id=assignment_id).confirmed_at is not None
    [answer] = Answer.objects.filter(job=job)
    [shape] = answer.value["shapes"]
    assert shape["label"] == "person" and answer.assignment.worker.external_id == "AWORKERA"
    assert shape["box"] == pytest.approx([60, 50, 240, 190], abs=1.5)
    assert standin.state.assignments[assignment_id]["AssignmentStatus"] == "Submitted"
