"""Our MTurk pages name an item's answer field by its place in the HIT (``place:1``...), never by the item's
external id, which could tell a worker which items are gold; answers under the names used before
(``item:<external id>``) are still read, and every path maps places back to the right items."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from tasks.models import Answer, Assignment, Hit, Job, JobState, MTurkPageSubmission
from tasks.services.mturk_collect import collect_mturk_work
from tasks.services.mturk_publishing import publish_mturk_hits
from tasks.services.publishing import publish_job
from tests.factories import ItemFactory, JobFactory
from tests.marketplaces.mturk_standin import MTurkStandIn
from tests.tasks.services.mturk_helpers import ACTOR
from workforce.marketplaces.mturk import MTurkMarketplace

pytestmark = pytest.mark.django_db
URL = reverse("mturk-task")
IDS = ("secret-a", "secret-b", "secret-c")


def _three_item_hit(mturk: MTurkMarketplace, **fields: object) -> Hit:
    job = JobFactory(marketplace="mturk", state=JobState.DRAFT, reward=Decimal("0.05"), items_per_hit=3, **fields)
    for n, external_id in enumerate(IDS):
        ItemFactory(job=job, external_id=external_id, payload={"text": f"sentence number {n + 1}"})
    publish_mturk_hits(job=publish_job(job=job, actor=ACTOR), actor=ACTOR, connector=mturk)
    return Hit.objects.get(job=job)


def _display_order(hit: Hit) -> list[str]:
    return list(hit.items.order_by("hit_items__position").values_list("external_id", flat=True))


def _params(hit: Hit, assignment: str, worker: str, submit_to: str) -> dict[str, str]:
    return {"assignmentId": assignment, "hitId": str(hit.external_id), "workerId": worker, "turkSubmitTo": submit_to}


def _signed(params: dict[str, str]) -> tuple[dict[str, str], str]:
    page = Client().get(URL, params).content.decode()
    found = re.search(r'name="signature" value="([^"]+)"', page)
    assert found, page
    return {**params, "signature": found.group(1)}, page


def _stored(job: Job, worker: str) -> dict[str, str]:
    rows = Answer.objects.filter(job=job, worker__external_id=worker).values_list("item__external_id", "value")
    return dict(rows)


def _claimed(worker: str) -> dict[str, str]:
    """The answers the page kept for ``worker`` (by item external id), before MTurk lists the assignment."""
    return dict(MTurkPageSubmission.objects.get(worker_id=worker).answers)


def test_the_page_names_fields_by_place_and_shows_no_item_id(mturk: MTurkMarketplace) -> None:
    hit = _three_item_hit(mturk)
    _, page = _signed(_params(hit, "3A" + "1" * 28, "AWORKER1", "https://www.mturk.com"))
    assert set(re.findall(r'name="(place:\d+)"', page)) == {"place:1", "place:2", "place:3"}
    assert not any(external_id in page for external_id in IDS)
    assert "item:" not in page


def test_answers_posted_by_place_land_on_the_items_shown_there_and_go_on_by_place(mturk: MTurkMarketplace) -> None:
    hit = _three_item_hit(mturk)
    order = _display_order(hit)
    signed, _ = _signed(_params(hit, "3A" + "1" * 28, "AWORKER1", "https://workersandbox.mturk.com"))
    labels = {"place:1": "pos", "place:2": "neg", "place:3": "neutral"}
    response = Client().post(URL, {**signed, **labels})
    body = response.content.decode()
    assert response.status_code == 200, body
    assert _claimed("AWORKER1") == {order[0]: "pos", order[1]: "neg", order[2]: "neutral"}
    forwarded = dict(re.findall(r'<input type="hidden" name="((?:place|item):[^"]*)" value="([^"]*)">', body))
    assert forwarded == labels  # MTurk keeps them under the page's names, which say nothing about the items
    assert not any(external_id in body for external_id in IDS)


def test_a_place_the_hit_does_not_have_is_refused_and_nothing_is_stored(mturk: MTurkMarketplace) -> None:
    hit = _three_item_hit(mturk)
    signed, _ = _signed(_params(hit, "3A" + "1" * 28, "AWORKER1", "https://www.mturk.com"))
    response = Client().post(URL, {**signed, "place:1": "pos", "place:2": "neg", "place:9": "pos"})
    assert response.status_code == 400 and b"Answer every item" in response.content
    assert not Assignment.objects.exists() and not MTurkPageSubmission.objects.exists()


def test_collect_maps_places_back_to_items_and_still_reads_the_old_names(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    hit = _three_item_hit(mturk)
    order = _display_order(hit)
    by_place = standin.state.accept(str(hit.external_id), "AWORKERP")
    standin.state.external_submit(
        [("assignmentId", by_place), ("place:3", "neutral"), ("place:1", "neg"), ("place:2", "pos")]
    )
    by_id = standin.state.accept(str(hit.external_id), "AWORKERI")  # a HIT made before pages named places
    standin.state.external_submit([("assignmentId", by_id)] + [(f"item:{i}", "pos") for i in IDS])
    result = collect_mturk_work(actor=ACTOR, connector=mturk)
    assert (result.assignments_created, result.skipped) == (2, [])
    assert _stored(hit.job, "AWORKERP") == {order[0]: "neg", order[1]: "pos", order[2]: "neutral"}
    assert _stored(hit.job, "AWORKERI") == dict.fromkeys(IDS, "pos")


def test_an_html_question_names_fields_by_place(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    _three_item_hit(mturk, mturk_options={"question": "html"})
    (remote,) = standin.state.hits.values()
    assert re.findall(r'name="(place:\d+)"', remote["Question"]) == ["place:1"] * 3 + ["place:2"] * 3 + ["place:3"] * 3
    assert not any(external_id in remote["Question"] for external_id in IDS)
