"""The ExternalQuestion page: preview read-only, answers stored here (as a claim) before they go to MTurk,
framed only by MTurk's worker sites; simulated workers submit through it against the stand-in. A post counts
as work only once MTurk lists the assignment, so made-up ids never become answers."""

from __future__ import annotations

import re
import urllib.parse
import urllib.request

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from tasks.models import Answer, Assignment, Hit, MTurkPageSubmission
from tasks.services.consensus import compute_consensus
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
    claim = MTurkPageSubmission.objects.get(assignment_id=params["assignmentId"])
    assert (claim.worker_id, claim.hit_id, claim.answers, claim.confirmed_at) == (
        "AWORKER1",
        hit.pk,
        {"t0": "neg"},
        None,
    )
    # a claim is not work: no assignment, no answer and no filled slot until MTurk lists it
    assert not Assignment.objects.exists() and not Answer.objects.exists()
    hit.refresh_from_db()
    assert hit.assignments_submitted == 0


def test_a_repeated_post_replaces_the_claim(mturk: MTurkMarketplace) -> None:
    hit = Hit.objects.get(job=published_mturk_job(mturk, 1))
    params = _signed(_params(hit, "3A" + "1" * 28, "AWORKER1", "https://www.mturk.com"))
    assert Client().post(URL, {**params, "place:1": "neg"}).status_code == 200
    assert Client().post(URL, {**params, "place:1": "pos"}).status_code == 200
    assert MTurkPageSubmission.objects.get().answers == {"t0": "pos"}


def test_a_wrong_label_is_refused_and_nothing_is_stored(mturk: MTurkMarketplace) -> None:
    hit = Hit.objects.get(job=published_mturk_job(mturk, 1))
    params = _params(hit, "3A" + "1" * 28, "AWORKER1", "https://www.mturk.com")
    response = Client().post(URL, {**_signed(params), "place:1": "bogus"})
    assert response.status_code == 400 and b"Choose one of the job" in response.content
    assert not Assignment.objects.exists() and not MTurkPageSubmission.objects.exists()


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
    assert MTurkPageSubmission.objects.filter(confirmed_at__isnull=True).count() == 6
    assert not Assignment.objects.filter(job=job).exists()
    result = collect_mturk_work(actor=ACTOR, connector=mturk)
    assert (result.assignments_created, result.skipped) == (6, [])  # MTurk's list is what records the work
    assert Assignment.objects.filter(job=job).count() == 6 == Answer.objects.filter(job=job).count()
    assert not MTurkPageSubmission.objects.filter(confirmed_at__isnull=True).exists()
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


def test_made_up_ids_never_become_work_or_sway_the_consensus(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    """Anyone can open the page with ids of their choosing and post; only MTurk's own list records work."""
    job = published_mturk_job(mturk, 1)
    hit = Hit.objects.get(job=job)
    for n in range(5):  # forged: the stand-in has no such assignments
        forged = _signed(_params(hit, f"3F{n}" + "0" * 27, f"AFORGED{n}", standin.url))
        assert Client().post(URL, {**forged, "place:1": "neg"}).status_code == 200
    real = standin.state.accept(str(hit.external_id), "AREALWORKER")
    response = Client().post(URL, {**_signed(_params(hit, real, "AREALWORKER", standin.url)), "place:1": "pos"})
    _post_form(response.content.decode())

    result = collect_mturk_work(actor=ACTOR, connector=mturk)

    assert result.assignments_created == 1
    assert list(Assignment.objects.values_list("external_id", "worker__external_id")) == [(real, "AREALWORKER")]
    assert set(MTurkPageSubmission.objects.filter(confirmed_at__isnull=True).values_list("worker_id", flat=True)) == {
        f"AFORGED{n}" for n in range(5)
    }
    hit.refresh_from_db()
    assert hit.assignments_submitted == 1
    compute_consensus(job=job, actor=ACTOR)
    assert list(job.consensus_labels.values_list("value", "answers_count")) == [("pos", 1)]


def test_a_claim_for_another_worker_or_hit_stays_unconfirmed(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    job = published_mturk_job(mturk, 1)
    hit = Hit.objects.get(job=job)
    real = standin.state.accept(str(hit.external_id), "AREALWORKER")
    # someone who learnt the assignment id posts it under another worker id first
    stolen = _signed(_params(hit, real, "AOTHERWORKER", standin.url))
    assert Client().post(URL, {**stolen, "place:1": "neg"}).status_code == 200
    standin.state.external_submit([("assignmentId", real), ("place:1", "pos")])  # the real worker, on MTurk
    collect_mturk_work(actor=ACTOR, connector=mturk)
    claim = MTurkPageSubmission.objects.get(assignment_id=real)
    assert claim.worker_id == "AOTHERWORKER" and claim.confirmed_at is None
    assert list(Answer.objects.values_list("worker__external_id", "value")) == [("AREALWORKER", "pos")]


def test_once_mturk_has_the_assignment_the_page_refuses_it(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    hit = Hit.objects.get(job=published_mturk_job(mturk, 1))
    real = standin.state.accept(str(hit.external_id), "AREALWORKER")
    params = _signed(_params(hit, real, "AREALWORKER", standin.url))
    _post_form(Client().post(URL, {**params, "place:1": "pos"}).content.decode())
    collect_mturk_work(actor=ACTOR, connector=mturk)
    again = Client().post(URL, {**params, "place:1": "neg"})
    assert again.status_code == 400 and b"MTurk already has this assignment" in again.content
    assert Answer.objects.get().value == "pos"


def test_a_confirmed_claim_is_not_overwritten_even_when_collect_did_not_record_it(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    """Collect confirms the claims of every assignment MTurk lists, also one it skips recording (work that
    belongs to another job, say): MTurk holds those answers, so the page refuses a repost too."""
    hit = Hit.objects.get(job=published_mturk_job(mturk, 1))
    real = standin.state.accept(str(hit.external_id), "AREALWORKER")
    params = _signed(_params(hit, real, "AREALWORKER", standin.url))
    _post_form(Client().post(URL, {**params, "place:1": "pos"}).content.decode())
    MTurkPageSubmission.objects.filter(assignment_id=real).update(confirmed_at=timezone.now())  # as collect does
    again = Client().post(URL, {**params, "place:1": "neg"})
    assert again.status_code == 400 and b"MTurk already has this assignment" in again.content
    assert MTurkPageSubmission.objects.get(assignment_id=real).answers == {"t0": "pos"}


@override_settings(MTURK_PAGE_RATE_LIMIT=3)
def test_posts_from_one_address_are_rate_limited(mturk: MTurkMarketplace) -> None:
    hit = Hit.objects.get(job=published_mturk_job(mturk, 1))
    statuses = []
    for n in range(5):
        params = _signed(_params(hit, f"3R{n}" + "0" * 27, "AWORKER1", "https://www.mturk.com"))
        statuses.append(Client().post(URL, {**params, "place:1": "neg"}).status_code)
    assert statuses == [200, 200, 200, 429, 429]
    assert Client().get(URL, _params(hit, "3R9" + "0" * 27, "AWORKER1", "https://www.mturk.com")).status_code == 200


def test_ops_managers_see_the_claims_mturk_never_confirmed(
    mturk: MTurkMarketplace, standin: MTurkStandIn, ops_manager: object
) -> None:
    hit = Hit.objects.get(job=published_mturk_job(mturk, 1))
    forged = _signed(_params(hit, "3F0" + "0" * 27, "AFORGED0", standin.url))
    Client().post(URL, {**forged, "place:1": "neg"})
    real = standin.state.accept(str(hit.external_id), "AREALWORKER")
    _post_form(
        Client()
        .post(URL, {**_signed(_params(hit, real, "AREALWORKER", standin.url)), "place:1": "pos"})
        .content.decode()
    )
    collect_mturk_work(actor=ACTOR, connector=mturk)
    client = Client()
    client.force_login(ops_manager)
    page = client.get(reverse("admin:tasks_mturkpagesubmission_changelist"), {"confirmed_at__isnull": "True"})
    assert page.status_code == 200
    assert [c.worker_id for c in page.context["cl"].result_list] == ["AFORGED0"]
