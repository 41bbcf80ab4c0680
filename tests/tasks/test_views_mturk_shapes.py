"""The drawing page as an MTurk ExternalQuestion: the canvas editor (read-only in the preview), drawings
checked against the item's image by the same ``validate_shapes``, stored, then forwarded to MTurk."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from tasks.models import Assignment, Hit, JobState, MTurkPageSubmission, TaskKind
from tasks.services.errors import ServiceError
from tasks.services.mturk_publishing import publish_mturk_hits
from tasks.services.publishing import publish_job, request_publish
from tests.factories import ItemFactory, JobFactory
from tests.tasks.services.mturk_helpers import ACTOR
from workforce.marketplaces.mturk import MTurkMarketplace

pytestmark = pytest.mark.django_db
URL = reverse("mturk-task")
PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"


def _shape_hit(mturk: MTurkMarketplace, kind: str = TaskKind.IMAGE_BOXES) -> Hit:
    job = JobFactory(
        marketplace="mturk", state=JobState.DRAFT, task_kind=kind, labels=["car", "person"], reward=Decimal("0.05")
    )
    ItemFactory(
        job=job, external_id="img1", payload={"image_url": "https://example.com/a.jpg", "width": 400, "height": 300}
    )
    job = publish_job(job=job, actor=ACTOR)
    publish_mturk_hits(job=job, actor=ACTOR, connector=mturk)
    return Hit.objects.get(job=job)


def _params(hit: Hit, assignment: str = "3A" + "1" * 28) -> dict[str, str]:
    return {
        "assignmentId": assignment,
        "hitId": str(hit.external_id),
        "workerId": "AWORKER1",
        "turkSubmitTo": "https://workersandbox.mturk.com",
    }


def _signed(params: dict[str, str]) -> dict[str, str]:
    page = Client().get(URL, params).content.decode()
    found = re.search(r'name="signature" value="([^"]+)"', page)
    assert found, page
    return {**params, "signature": found.group(1)}


def test_the_page_of_a_box_job_renders_the_canvas_editor_with_the_mturk_field(mturk: MTurkMarketplace) -> None:
    body = Client().get(URL, _params(_shape_hit(mturk))).content.decode()
    assert 'class="shape-editor"' in body and 'data-kind="image_boxes"' in body
    assert 'data-width="400" data-height="300"' in body and "data-readonly" not in body
    assert 'name="place:1"' in body and 'data-submit="post"' in body
    assert "tasks/shapes.js" in body and 'id="job-labels"' in body
    assert 'type="radio"' not in body and 'type="submit"' in body


def test_the_preview_shows_the_image_read_only(mturk: MTurkMarketplace) -> None:
    hit = _shape_hit(mturk)
    body = Client().get(URL, {"assignmentId": PREVIEW, "hitId": hit.external_id}).content.decode()
    assert 'class="shape-editor"' in body and 'data-readonly="1"' in body
    assert 'type="submit"' not in body and "Accept the HIT to draw" in body


def test_a_drawing_is_checked_stored_and_forwarded_to_mturk(mturk: MTurkMarketplace) -> None:
    hit = _shape_hit(mturk)
    drawing = {"shapes": [{"label": "car", "box": [50.123, 40, 250, 200.5]}]}
    response = Client(enforce_csrf_checks=True).post(URL, {**_signed(_params(hit)), "place:1": json.dumps(drawing)})
    body = response.content.decode()
    assert response.status_code == 200
    assert 'action="https://workersandbox.mturk.com/mturk/externalSubmit"' in body
    stored = MTurkPageSubmission.objects.get(assignment_id="3A" + "1" * 28).answers["img1"]
    assert stored == {"shapes": [{"label": "car", "box": [50.12, 40.0, 250.0, 200.5]}]}
    forwarded = re.search(r'name="place:1" value="([^"]*)"', body)
    assert forwarded and json.loads(unescape(forwarded.group(1))) == stored


@pytest.mark.parametrize(
    ("drawing", "message"),
    [
        ({"shapes": [{"label": "car", "box": [50, 40, 450, 200]}]}, "lies outside the 400 x 300 image"),
        ({"shapes": [{"label": "tree", "box": [50, 40, 250, 200]}]}, "needs a class from the job"),
        ({"shapes": [{"label": "car", "box": [50, 40, 50.5, 200]}]}, "smaller than one pixel"),
        ("not json", "not JSON"),
    ],
)
def test_a_bad_drawing_is_refused_with_the_reason_and_nothing_is_stored(
    mturk: MTurkMarketplace, drawing: object, message: str
) -> None:
    hit = _shape_hit(mturk)
    value = drawing if isinstance(drawing, str) else json.dumps(drawing)
    response = Client().post(URL, {**_signed(_params(hit)), "place:1": value})
    assert response.status_code == 400 and message in response.content.decode()
    assert "Item 1:" in response.content.decode() and "img1" not in response.content.decode()
    assert not Assignment.objects.exists() and not MTurkPageSubmission.objects.exists()
    field = re.search(r"name=\"place:1\" value='([^']*)'", response.content.decode())
    assert field and unescape(field.group(1)) == value  # the drawing comes back to be corrected


def test_a_polygon_job_takes_polygons(mturk: MTurkMarketplace) -> None:
    hit = _shape_hit(mturk, TaskKind.IMAGE_POLYGONS)
    drawing = {"shapes": [{"label": "person", "points": [[10, 10], [100, 10], [60, 90]]}]}
    response = Client().post(URL, {**_signed(_params(hit)), "place:1": json.dumps(drawing)})
    assert response.status_code == 200
    assert MTurkPageSubmission.objects.get().answers["img1"]["shapes"][0]["points"] == [
        [10.0, 10.0],
        [100.0, 10.0],
        [60.0, 90.0],
    ]
    refused = Client().post(
        URL,
        {
            **_signed(_params(hit, "3A" + "2" * 28)),
            "place:1": json.dumps({"shapes": [{"label": "car", "points": [[1, 1], [2, 2]]}]}),
        },
    )
    assert refused.status_code == 400 and b"at least 3 vertices" in refused.content


def test_a_drawing_job_cannot_go_to_mturk_as_an_html_question(mturk: MTurkMarketplace) -> None:
    job = JobFactory(
        marketplace="mturk",
        state=JobState.DRAFT,
        task_kind=TaskKind.IMAGE_BOXES,
        labels=["car", "person"],
        reward=Decimal("0.05"),
        mturk_options={"question": "html"},
    )
    ItemFactory(job=job, payload={"image_url": "https://example.com/a.jpg", "width": 400, "height": 300})
    with pytest.raises(ServiceError, match="needs the drawing page"):
        request_publish(job=job, actor=ACTOR)
    job.refresh_from_db()
    assert job.state == JobState.DRAFT
