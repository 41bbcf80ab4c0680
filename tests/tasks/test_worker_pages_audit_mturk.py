"""Worker-audit findings on the MTurk ExternalQuestion page and in training feedback: refusals name an
item by its place (never its external id, which could tell gold apart), crafted drawings get a sentence,
instructions are Markdown, and training feedback on a page of several items says which item was wrong."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from tasks.models import Assignment, Job, MTurkPageSubmission
from tasks.selectors import list_page_items
from tasks.services.imports import import_items
from tasks.services.pool import assign_next_hit
from tasks.services.publishing import publish_job
from tests.conftest import SYSTEM
from tests.factories import JobFactory
from tests.tasks.test_views_mturk_places import _params as _place_params
from tests.tasks.test_views_mturk_places import _signed as _place_signed
from tests.tasks.test_views_mturk_places import _three_item_hit
from tests.tasks.test_views_mturk_shapes import URL, _params, _shape_hit, _signed
from workforce.marketplaces.mturk import MTurkMarketplace
from workforce.models import Worker

pytestmark = pytest.mark.django_db

SUBMIT_TO = "https://workersandbox.mturk.com"


# --- 3: a refusal names the item's place, not its external id ---------------------------------------


def test_a_refused_label_names_the_place_not_the_items_external_id(mturk: MTurkMarketplace) -> None:
    hit = _three_item_hit(mturk)
    signed, _ = _place_signed(_place_params(hit, "3A" + "2" * 28, "AWORKER2", SUBMIT_TO))
    response = Client().post(URL, {**signed, "place:1": "pos", "place:2": "pos", "place:3": "bogus"})
    body = response.content.decode()
    assert response.status_code == 400
    assert "Item 3: Choose one of the job&#x27;s labels" in body
    assert not any(secret in body for secret in ("secret-a", "secret-b", "secret-c"))
    assert not MTurkPageSubmission.objects.exists()


def test_a_refused_drawing_names_the_place(mturk: MTurkMarketplace) -> None:
    hit = _shape_hit(mturk)
    outside = '{"shapes": [{"label": "car", "box": [10, 10, 900, 20]}]}'
    response = Client().post(URL, {**_signed(_params(hit)), "place:1": outside})
    body = response.content.decode()
    assert response.status_code == 400 and "Item 1: Shape 1 lies outside the 400 x 300 image." in body
    assert "img1" not in body


# --- 1: crafted drawings on the MTurk page -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[" * 100_000, "Item 1: The drawing could not be read (it is not JSON)."),
        (
            '{"shapes": [{"label": "car", "box": [' + "9" * 400 + ", 0, 10, 10]}]}",
            "Item 1: Shape 1 has a coordinate that is not a finite number.",
        ),
    ],
    ids=["deeply-nested", "huge-integer"],
)
def test_a_crafted_drawing_on_the_mturk_page_is_a_400_with_a_sentence(
    mturk: MTurkMarketplace, value: str, message: str
) -> None:
    hit = _shape_hit(mturk)
    response = Client().post(URL, {**_signed(_params(hit)), "place:1": value})
    assert response.status_code == 400 and message in response.content.decode()
    assert not MTurkPageSubmission.objects.exists()


# --- 13: instructions as Markdown -------------------------------------------------------------------


def test_the_mturk_page_renders_the_instructions_as_markdown(mturk: MTurkMarketplace) -> None:
    hit = _shape_hit(mturk)
    Job.objects.filter(pk=hit.job_id).update(instructions="Choose the **writer's** mood.\n\n- one")
    page = Client().get(URL, _params(hit)).content.decode()
    assert "<strong>writer" in page and "**" not in page and "<li>one</li>" in page


# --- 17: training feedback on a page of several items --------------------------------------------------

CSV = (
    "external_id,text,gold\n"
    + "".join(f"n{i},normal {i},\n" for i in range(6))
    + "".join(f"g{i},gold {i},pos\n" for i in range(6))
)


def _training_page(worker: Worker) -> tuple[Assignment, list[Any]]:
    job = JobFactory(items_per_hit=3, gold_rate=0.99, training_mode=True, redundancy=1, instructions="Be **kind**.")
    import_items(job=job, stream=io.StringIO(CSV), filename="items.csv", actor=SYSTEM)
    job = publish_job(job=job, actor=SYSTEM)
    lease = assign_next_hit(job=job, worker=worker, rng=random.Random(0))  # rate 0.99: 2 gold places a page
    items = list_page_items(lease)
    assert any(item.is_gold for item in items) and not all(item.is_gold for item in items)
    return lease, items


def test_training_feedback_without_javascript_names_the_item(
    make_worker: Callable[..., Worker], login_client: Callable[[Any], Client]
) -> None:
    worker = make_worker()
    client = login_client(worker.user)
    lease, items = _training_page(worker)
    answers = {f"answer-{item.place}": "neg" for item in items}  # every gold answer here is "pos"
    response = client.post(reverse("submit-task", args=[lease.uuid]), answers)
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    gold_places = [item.place for item in items if item.is_gold]
    assert shown == [f"Training, item {place}: you answered neg, the correct answer was pos." for place in gold_places]
