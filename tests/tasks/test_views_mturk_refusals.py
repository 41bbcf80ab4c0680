"""The ExternalQuestion page on a multi-label job takes an item left with no box ticked as "none of these
apply" (as the internal pool's page does), and a refused submission shows the page again with the worker's
own choices still ticked, so they fix only what was refused."""

from __future__ import annotations

import html as html_lib
import re
import urllib.parse
import urllib.request

import pytest
from django.test import Client
from django.urls import reverse

from tasks.models import Answer, Hit, Job, MTurkPageSubmission, TaskKind
from tasks.services.mturk_collect import collect_mturk_work
from tasks.services.predictions import import_predictions_from_text
from tests.marketplaces.mturk_standin import MTurkStandIn
from tests.tasks.services.mturk_helpers import ACTOR, published_mturk_job
from workforce.marketplaces.mturk import MTurkMarketplace

pytestmark = pytest.mark.django_db
URL = reverse("mturk-task")
SANDBOX = "https://workersandbox.mturk.com"
COLOURS = ["red", "round", "big"]
_HIDDEN = r'<input type="hidden" name="([^"]+)" value="([^"]*)">'


def _multilabel_hit(mturk: MTurkMarketplace, items: int) -> Hit:
    job = published_mturk_job(mturk, items, task_kind=TaskKind.TEXT_MULTILABEL, labels=COLOURS, items_per_hit=items)
    return Hit.objects.get(job=job)


def _single_label_hit(mturk: MTurkMarketplace, items: int) -> Hit:
    return Hit.objects.get(job=published_mturk_job(mturk, items, items_per_hit=items))


def _order(hit: Hit) -> list[str]:
    return list(hit.items.order_by("hit_items__position").values_list("external_id", flat=True))


def _signed(hit: Hit, assignment: str, worker: str, submit_to: str = SANDBOX) -> dict[str, str]:
    params = {"assignmentId": assignment, "hitId": str(hit.external_id), "workerId": worker, "turkSubmitTo": submit_to}
    found = re.search(r'name="signature" value="([^"]+)"', Client().get(URL, params).content.decode())
    assert found
    return {**params, "signature": found.group(1)}


def _ticked(page: str) -> dict[str, list[str]]:
    """The boxes and radios the page shows ticked, by field name."""
    ticked: dict[str, list[str]] = {}
    for tag in re.findall(r"<input [^>]*>", page):
        name = re.search(r'name="(place:\d+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and value and re.search(r"\schecked\b", tag):
            ticked.setdefault(name.group(1), []).append(value.group(1))
    return ticked


def _post_form(html: str) -> None:
    """What the worker's browser does with the forwarding page: post its form where it says."""
    action = re.search(r'action="([^"]+)"', html)
    assert action
    fields = [(html_lib.unescape(k), html_lib.unescape(v)) for k, v in re.findall(_HIDDEN, html)]
    data = urllib.parse.urlencode(fields).encode()
    with urllib.request.urlopen(urllib.request.Request(action.group(1), data=data, method="POST")) as reply:
        assert reply.status == 200


def test_a_multi_label_item_left_unticked_is_an_empty_selection_all_the_way_to_the_answers(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    hit = _multilabel_hit(mturk, 3)
    order = _order(hit)
    assignment = standin.state.accept(str(hit.external_id), "AWORKERA")
    response = Client().post(URL, {**_signed(hit, assignment, "AWORKERA", standin.url), "place:2": ["big", "red"]})
    body = response.content.decode()
    assert response.status_code == 200, body
    assert MTurkPageSubmission.objects.get(assignment_id=assignment).answers == {
        order[0]: [],
        order[1]: ["red", "big"],
        order[2]: [],
    }
    forwarded = {k: html_lib.unescape(v) for k, v in re.findall(_HIDDEN, body) if k.startswith("place:")}
    assert forwarded == {"place:1": "[]", "place:2": '["big", "red"]', "place:3": "[]"}
    _post_form(body)
    result = collect_mturk_work(actor=ACTOR, connector=mturk)
    assert (result.assignments_created, result.skipped) == (1, [])
    stored = dict(Answer.objects.filter(job=hit.job).values_list("item__external_id", "value"))
    assert stored == {order[0]: [], order[1]: ["red", "big"], order[2]: []}


def test_a_multi_label_page_with_no_box_ticked_at_all_is_accepted(mturk: MTurkMarketplace) -> None:
    hit = _multilabel_hit(mturk, 2)
    response = Client().post(URL, _signed(hit, "3A" + "1" * 28, "AWORKER1"))
    assert response.status_code == 200, response.content.decode()
    assert list(MTurkPageSubmission.objects.get().answers.values()) == [[], []]


def test_a_single_label_item_left_unanswered_is_still_refused(mturk: MTurkMarketplace) -> None:
    hit = _single_label_hit(mturk, 3)
    response = Client().post(URL, {**_signed(hit, "3A" + "1" * 28, "AWORKER1"), "place:1": "neg", "place:3": "pos"})
    assert response.status_code == 400
    assert "Answer every item of this task (unanswered: item 2)." in response.content.decode()
    assert not MTurkPageSubmission.objects.exists()


def test_a_refused_single_label_submit_shows_the_page_again_with_the_workers_choices(
    mturk: MTurkMarketplace,
) -> None:
    hit = _single_label_hit(mturk, 3)
    other = _signed(hit, "3A" + "2" * 28, "AOTHER")  # another worker's claim on the same HIT is never shown
    assert Client().post(URL, {**other, "place:1": "pos", "place:2": "pos", "place:3": "pos"}).status_code == 200
    signed = _signed(hit, "3A" + "1" * 28, "AWORKER1")
    refused = Client().post(URL, {**signed, "place:1": "neg", "place:3": "neutral"})
    page = refused.content.decode()
    assert refused.status_code == 400
    assert 'role="alert">Answer every item of this task (unanswered: item 2).' in page
    assert _ticked(page) == {"place:1": ["neg"], "place:3": ["neutral"]}
    assert f'name="signature" value="{signed["signature"]}"' in page  # the same form, ready to submit again
    again = Client().post(URL, {**signed, "place:1": "neg", "place:2": "pos", "place:3": "neutral"})
    assert again.status_code == 200
    order = _order(hit)
    assert MTurkPageSubmission.objects.get(worker_id="AWORKER1").answers == {
        order[0]: "neg",
        order[1]: "pos",
        order[2]: "neutral",
    }


def test_a_refused_multi_label_submit_keeps_the_ticks_and_not_the_suggestions_the_worker_unticked(
    mturk: MTurkMarketplace,
) -> None:
    hit = _multilabel_hit(mturk, 2)
    order = _order(hit)
    job = hit.job
    text = f"external_id,label,score\n{order[0]},red|round,0.9\n"
    import_predictions_from_text(job=job, text=text, filename="p.csv", model_name="m1", actor=ACTOR)
    Job.objects.filter(pk=job.pk).update(prelabel_model="m1")
    signed = _signed(hit, "3A" + "1" * 28, "AWORKER1")
    assert _ticked(Client().get(URL, signed).content.decode()) == {"place:1": ["red", "round"]}  # the suggestion

    refused = Client().post(URL, {**signed, "place:1": ["round"], "place:2": ["big", "bogus"]})
    page = refused.content.decode()
    assert refused.status_code == 400
    assert "Item 2: Unknown label(s): bogus." in page
    assert _ticked(page) == {"place:1": ["round"], "place:2": ["big"]}  # "red" stays unticked, as the worker left it
    assert re.search(r'value="red"> red <span class="prelabel">suggested</span>', page), page
    assert not MTurkPageSubmission.objects.exists()
