"""A real browser (Playwright driving Debian's headless Chromium) on the MTurk ExternalQuestion page of a
multi-label job: an item left with no box ticked ("none of these apply") does not stop the submit, in the
browser or on the server, and the answers reach MTurk. Database checks run after the browser has closed
(Playwright's sync API keeps an event loop in this thread, under which Django refuses ORM calls)."""

from __future__ import annotations

import os
import shutil
from typing import Any
from urllib.parse import urlencode

import pytest
from django.urls import reverse

from tasks.models import Answer, Hit, TaskKind
from tasks.services.mturk_collect import collect_mturk_work
from tests.marketplaces.mturk_standin import MTurkStandIn
from tests.tasks.services.mturk_helpers import ACTOR, published_mturk_job
from workforce.marketplaces.mturk import MTurkMarketplace

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.path.exists(CHROMIUM), reason="needs Debian's chromium package (apt-get install chromium)"
    ),
]


def test_a_mturk_worker_leaves_an_item_unticked_and_the_answers_reach_mturk(
    mturk: MTurkMarketplace, standin: MTurkStandIn, live_server: Any
) -> None:
    from playwright.sync_api import sync_playwright

    job = published_mturk_job(mturk, 2, task_kind=TaskKind.TEXT_MULTILABEL, labels=["red", "round"], items_per_hit=2)
    hit = Hit.objects.get(job=job)
    order = list(hit.items.order_by("hit_items__position").values_list("external_id", flat=True))
    assignment_id = standin.state.accept(str(hit.external_id), "AWORKERA")
    query = urlencode(
        {"assignmentId": assignment_id, "hitId": hit.external_id, "workerId": "AWORKERA", "turkSubmitTo": standin.url}
    )
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{live_server.url}{reverse('mturk-task')}?{query}")
        page.check('input[name="place:2"][value="round"]')  # item 1: no box ticked
        page.click('button[type="submit"]')  # posts the page, whose answer page forwards itself to MTurk
        page.wait_for_url(f"{standin.url}/**")
        browser.close()
    assert errors == []
    assert standin.state.assignments[assignment_id]["AssignmentStatus"] == "Submitted"
    result = collect_mturk_work(actor=ACTOR, connector=mturk)
    assert (result.assignments_created, result.skipped) == (1, [])
    stored = dict(Answer.objects.filter(job=job).values_list("item__external_id", "value"))
    assert stored == {order[0]: [], order[1]: ["round"]}
