"""The review API: approve, reject with feedback, bonus once per key; bad input is a 400 and changes nothing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from tasks.models import Assignment, AssignmentState, CostEntry, CostKind
from tests.tasks.finance_helpers import submit_work
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db


def _url(verb: str, assignment: Assignment) -> str:
    return reverse(f"api-assignment-{verb}", args=[assignment.job_id, assignment.pk])


def test_a_reviewer_approves_rejects_and_bonuses_through_the_api(
    reviewer: Any, as_user: Any, make_published_job: Any, make_worker: Any
) -> None:
    job = make_published_job(items=2, redundancy=1, reward=Decimal("0.05"))
    worker = make_worker()
    good, bad = submit_work(job, worker), submit_work(job, worker)
    api = as_user(reviewer)
    response = api.post(_url("approve", good), {"feedback": "Thanks"}, format="json")
    assert response.status_code == 200 and response.json() == {"assignment": str(good.uuid), "state": "approved"}
    assert api.post(_url("approve", good), {}, format="json").status_code == 400  # already approved
    assert api.post(_url("reject", bad), {}, format="json").status_code == 400  # feedback is required
    assert api.post(_url("reject", bad), {"feedback": "  "}, format="json").status_code == 400
    assert Assignment.objects.get(pk=bad.pk).state == AssignmentState.SUBMITTED
    rejected = api.post(_url("reject", bad), {"feedback": "Item 1 is spam, see rule 2."}, format="json")
    assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
    assert AuditEvent.objects.get(action="assignment.rejected").reason == "Item 1 is spam, see rule 2."
    bonus = {"amount": "0.10", "reason": "Careful work", "key": "b-1"}
    first = api.post(_url("bonus", good), bonus, format="json")
    again = api.post(_url("bonus", good), bonus, format="json")
    assert first.json()["paid"] is True and again.json()["paid"] is False
    assert list(CostEntry.objects.filter(kind=CostKind.BONUS).values_list("amount", flat=True)) == [Decimal("0.10")]
    assert api.post(_url("bonus", good), {**bonus, "key": "b-2", "amount": "0"}, format="json").status_code == 400
    reused = api.post(_url("bonus", good), {**bonus, "amount": "0.90"}, format="json")
    assert reused.status_code == 400 and "was used for another bonus" in reused.json()["detail"]


def test_the_review_api_is_for_reviewers_only(
    finance: Any, as_user: Any, make_published_job: Any, make_worker: Any
) -> None:
    job = make_published_job(items=1, redundancy=1)
    assignment = submit_work(job, make_worker())
    assert as_user(finance).post(_url("approve", assignment), {}, format="json").status_code == 403
    assert Assignment.objects.get(pk=assignment.pk).state == AssignmentState.SUBMITTED
