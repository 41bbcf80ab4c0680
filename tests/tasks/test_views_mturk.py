"""The ExternalQuestion page: preview read-only, answers stored here before they go to MTurk, framed only
by MTurk's worker sites; simulated workers submit through it against the stand-in."""

from __future__ import annotations

import re
import urllib.parse
import urllib.request

import pytest
from django.test import Client
from django.urls import reverse

from tasks.models import Answer, Assignment, AssignmentState, Hit
from tasks.services.mturk_collect import collect_mturk_work
from tests.marketplaces.mturk_standin import MTurkStandIn
from tests.tasks.services.mturk_helpers import ACTOR, published_mturk_job
from workforce.marketplaces.mturk import MTurkMarketplace

pytestmark = pytest.mark.django_db
URL = reverse("mturk-task")


def _params(hit: Hit, assignment: str, worker: str, submit_to: str) -> dict[str, str]:
    return {"assignmentId": assignment, "hitId": str(hit.external_id), "workerId": worker, "turkSubmitTo": submit_to}


def _signed(params: dict[str, str]) -> dict[str, str]:
    """The form fields as the page renders them (with its signature)."""
    page = Client().get(URL, params).content.decode()
    found = re.search(r'name="signature" value="([^"]+)"', page)
    assert found, page
    return {**params, "signature": found.group(1)}


def test_the_preview_is_read_only_and_framable_by_mturk_only(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    hit = Hit.objects.get(job=published_mturk_job(mturk, 1))
    response = Client().get(URL, {"assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE", "hitId": hit.external_id})
    body = response.content.decode()
    assert response.status_code == 200
    assert "Preview" in body and "disabled" in body and 'type="submit"' not in body
    assert response["Content-Security-Policy"] == (
        "frame-ancestors https://worker.mturk.com https://workersandbox.mturk.com"
    )
    assert "X-Frame-Options" not in response


def test_every_other_page_stays_unframeable(client: Client) -> None:
    assert client.get(reverse("login"))["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(
    "submit_to",
    ["https://evil.example.com", "http://www.mturk.com", "https://www.mturk.com.evil.net", "https://www.mturk.com/x"],
)
def test_turk_submit_to_must_be_mturk(mturk: MTurkMarketplace, submit_to: str) -> None:
    hit = Hit.objects.get(job=published_mturk_job(mturk, 1))
    response = Client().get(URL, _params(hit, "3A" + "1" * 28, "AWORKER1", submit_to))
    assert response.status_code == 400 and b"not an MTurk worker site" in response.content


def test_unknown_or_malformed_ids_are_a_400(mturk: MTurkMarketplace) -> None:
    hit = Hit.objects.get(job=published_mturk_job(mturk, 1))
    assert Client().get(URL, {"hitId": "3" * 30, "assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE"}).status_code == 400
    bad_worker = _params(hit, "3A" + "1" * 28, "worker<script>", "https://www.mturk.com")
    assert Client().get(URL, bad_worker).status_code == 400


def test_submit_stores_the_answers_then_forwards_them_to_mturk(mturk: MTurkMarketplace) -> None:
    hit = Hit.objects.get(job=published_mturk_job(mturk, 1))
    params = _params(hit, "3A" + "1" * 28, "AWORKER1", "https://workersandbox.mturk.com")
    response = Client(enforce_csrf_checks=True).post(URL, {**_signed(params), "place:1": "neg"})
    body = response.content.decode()
    assert response.status_code == 200
    assert 'action="https://workersandbox.mturk.com/mturk/externalSubmit"' in body
    assert 'name="place:1" value="neg"' in body and f'name="assignmentId" value="{params["assignmentId"]}"' in body
    assignment = Assignment.objects.get(external_id=params["assignmentId"])
    assert assignment.state == AssignmentState.SUBMITTED
    assert assignment.answers.get().value == "neg"


def test_a_wrong_label_is_refused_and_nothing_is_stored(mturk: MTurkMarketplace) -> None:
    hit = Hit.objects.get(job=published_mturk_job(mturk, 1))
    params = _params(hit, "3A" + "1" * 28, "AWORKER1", "https://www.mturk.com")
    response = Client().post(URL, {**_signed(params), "place:1": "bogus"})
    assert response.status_code == 400 and b"Choose one of the job" in response.content
    assert not Assignment.objects.exists()


def _post_form(html: str) -> None:
    """What the worker's browser does with the forwarding page: post its form where it says."""
    action = re.search(r'action="([^"]+)"', html)
    assert action
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html)
    data = urllib.parse.urlencode(fields).encode()
    with urllib.request.urlopen(urllib.request.Request(action.group(1), data=data, method="POST")) as reply:
        assert reply.status == 200


def test_simulated_workers_submit_through_the_page_and_collect_finds_the_same_work(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    job = published_mturk_job(mturk, 2)
    labels = {"AWORKERA": "pos", "AWORKERB": "neg", "AWORKERC": "neutral"}
    for hit in Hit.objects.filter(job=job):
        for worker, label in labels.items():
            assignment = standin.state.accept(str(hit.external_id), worker)
            params = _params(hit, assignment, worker, standin.url)
            response = Client().post(URL, {**_signed(params), "place:1": label})
            assert response.status_code == 200
            _post_form(response.content.decode())
    assert {a["AssignmentStatus"] for a in standin.state.assignments.values()} == {"Submitted"}
    result = collect_mturk_work(actor=ACTOR, connector=mturk)
    assert (result.assignments_created, result.skipped) == (0, [])  # the page had stored every one already
    assert Assignment.objects.filter(job=job).count() == 6 == Answer.objects.filter(job=job).count()
    assert set(Answer.objects.filter(job=job, worker__external_id="AWORKERB").values_list("value", flat=True)) == {
        "neg"
    }


def test_a_post_without_the_pages_signature_is_refused(mturk: MTurkMarketplace) -> None:
    hit = Hit.objects.get(job=published_mturk_job(mturk, 1))
    params = _params(hit, "3A" + "1" * 28, "AWORKER1", "https://www.mturk.com")
    other = _signed(_params(hit, "3A" + "2" * 28, "AWORKER1", "https://www.mturk.com"))["signature"]
    unsigned = Client().post(URL, {**params, "item:t0": "pos"})
    borrowed = Client().post(URL, {**params, "signature": other, "item:t0": "pos"})
    assert unsigned.status_code == 400 and b"not one this site showed" in unsigned.content
    assert borrowed.status_code == 400 and b"another assignment" in borrowed.content
    assert not Assignment.objects.exists()
