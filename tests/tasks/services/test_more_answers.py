"""The admin's "extend" actions (more answers on a whole job) reserve their worst-case cost first."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tasks.models import BudgetReservation, Hit, Job, JobState
from tasks.services.budget import BudgetExceeded
from tasks.services.errors import ServiceError
from tasks.services.more_answers import request_more_answers
from tests.factories import JobFactory
from tests.tasks.finance_helpers import submit_work
from tests.tasks.services.mturk_helpers import ACTOR, ledger_total, published_mturk_job
from workforce.marketplaces.mturk import MTurkMarketplace
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
D = Decimal


def test_more_answers_on_the_internal_pool_reserve_their_cost(make_published_job: Any, make_worker: Any) -> None:
    job = make_published_job(items=3, redundancy=1, reward=D("0.05"), budget_cap=D("0.30"))
    reserved = Job.objects.get(pk=job.pk).budget_reserved
    assert reserved == D("0.15")
    result = request_more_answers(job=job, actor=ACTOR, extra=1)
    assert result.hits == 3
    job.refresh_from_db()
    assert job.budget_reserved == D("0.30")
    assert set(Hit.objects.filter(job=job).values_list("assignments_wanted", flat=True)) == {2}
    assert BudgetReservation.objects.filter(job=job, reason="more answers").count() == 1


def test_more_answers_over_the_cap_change_nothing(make_published_job: Any, make_worker: Any) -> None:
    job = make_published_job(items=3, redundancy=1, reward=D("0.05"), budget_cap=D("0.20"))
    with pytest.raises(BudgetExceeded, match="budget cap"):
        request_more_answers(job=job, actor=ACTOR, extra=1)
    job.refresh_from_db()
    assert job.budget_reserved == D("0.15")
    assert set(Hit.objects.filter(job=job).values_list("assignments_wanted", flat=True)) == {1}
    assert not AuditEvent.objects.filter(action="job.more_answers_requested").exists()


def test_a_completed_job_is_reopened_within_budget(make_published_job: Any, make_worker: Any) -> None:
    job = make_published_job(items=1, redundancy=1, reward=D("0.05"), budget_cap=D("0.10"))
    submit_work(job, make_worker())
    assert Job.objects.get(pk=job.pk).state == JobState.COMPLETED
    assert request_more_answers(job=job, actor=ACTOR).hits == 1
    assert Job.objects.get(pk=job.pk).state == JobState.PUBLISHED


def test_ground_truth_jobs_are_refused() -> None:
    job = JobFactory(marketplace="groundtruth", state=JobState.PUBLISHED)
    with pytest.raises(ServiceError, match="fixed number of workers per object"):
        request_more_answers(job=job, actor=ACTOR)


def test_mturk_hits_are_extended_on_mturk_within_budget(mturk: MTurkMarketplace, standin: Any) -> None:
    # Each extra MTurk assignment costs 0.05 + 20% fee = 0.06; the cap leaves room for two of the three.
    job = published_mturk_job(mturk, 3, redundancy=1, budget_cap=D("0.30"))
    committed = ledger_total(job=job)
    result = request_more_answers(job=job, actor=ACTOR, extra=1, connector=mturk)
    assert (result.hits, result.skipped) == (2, 1)
    hits = list(Hit.objects.filter(job=job).order_by("pk"))
    assert [h.assignments_wanted for h in hits] == [2, 2, 1]
    assert [standin.state.hits[str(h.external_id)]["MaxAssignments"] for h in hits] == [2, 2, 1]
    assert ledger_total(job=job) - committed == D("0.12")
    job.refresh_from_db()
    assert job.budget_reserved <= D("0.30")


def test_the_same_request_sent_again_reserves_and_asks_once(make_published_job: Any) -> None:
    """A double-submitted form or a redelivered task carries the same key: the second changes nothing."""
    job = make_published_job(items=2, redundancy=1, reward=D("0.10"), budget_cap=D("5.00"))
    assert request_more_answers(job=job, actor=ACTOR, extra=1, request_key="admin:k1").hits == 2
    assert request_more_answers(job=job, actor=ACTOR, extra=1, request_key="admin:k1").hits == 0
    assert set(Hit.objects.filter(job=job).values_list("assignments_wanted", flat=True)) == {2}
    assert BudgetReservation.objects.filter(job=job, reason="more answers").count() == 1
    assert request_more_answers(job=job, actor=ACTOR, extra=1, request_key="admin:k2").hits == 2  # a new request
    assert set(Hit.objects.filter(job=job).values_list("assignments_wanted", flat=True)) == {3}


def test_the_same_request_extends_each_mturk_hit_once(mturk: MTurkMarketplace, standin: Any) -> None:
    job = published_mturk_job(mturk, 2, redundancy=1, budget_cap=D("1.00"))
    committed = ledger_total(job=job)
    first = request_more_answers(job=job, actor=ACTOR, extra=1, connector=mturk, request_key="admin:k1")
    again = request_more_answers(job=job, actor=ACTOR, extra=1, connector=mturk, request_key="admin:k1")
    assert (first.hits, first.skipped, again.hits, again.skipped) == (2, 0, 0, 0)
    hits = list(Hit.objects.filter(job=job).order_by("pk"))
    assert [standin.state.hits[str(h.external_id)]["MaxAssignments"] for h in hits] == [2, 2]
    assert ledger_total(job=job) - committed == D("0.12")
    assert AuditEvent.objects.filter(action="job.more_answers_requested", object_id=str(job.pk)).count() == 1
