"""Gold leases beyond those the publish estimate priced (a boost, or more gold than the rate's expectation)
reserve their cost as they are handed out, so a job never spends past its cap; with no room left, workers
get ordinary work instead."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from tasks.models import Assignment, BudgetReservation, Job, JobState
from tasks.reports.estimate import estimate_job_cost
from tasks.services.budget import job_spent
from tasks.services.collection import submit_assignment
from tasks.services.errors import NoWorkAvailable
from tasks.services.pool import assign_next_hit
from tasks.services.publishing import publish_job
from tasks.services.review_batch import approve_assignments
from tests.conftest import SYSTEM
from tests.factories import ItemFactory, JobFactory

pytestmark = pytest.mark.django_db


def _boosted_job(*, cap_over_estimate: Decimal) -> Job:
    job = JobFactory(redundancy=1, reward=Decimal("0.10"), gold_rate=0.1, gold_boost_rate=0.8, gold_boost_until=20)
    ItemFactory.create_batch(20, job=job)
    for n in range(10):
        ItemFactory(job=job, external_id=f"g{n}", is_gold=True, gold_answer="pos")
    Job.objects.filter(pk=job.pk).update(budget_cap=estimate_job_cost(job).total + cap_over_estimate)
    return publish_job(job=Job.objects.get(pk=job.pk), actor=SYSTEM)


def _work_until_done(job: Job, make_worker: Any, workers: int = 5) -> None:
    rng = random.Random(1)
    crowd = [make_worker() for _ in range(workers)]
    for _ in range(200):
        if Job.objects.get(pk=job.pk).state != JobState.PUBLISHED:
            break
        for worker in crowd:
            try:
                lease = assign_next_hit(job=job, worker=worker, rng=rng)
            except NoWorkAvailable:
                continue
            submit_assignment(assignment=lease, worker=worker, answers={lease.hit.items.get().pk: "pos"})
    approve_assignments(job=job, actor=SYSTEM)


def test_boosted_gold_stops_where_the_cap_does(make_worker: Any) -> None:
    job = _boosted_job(cap_over_estimate=Decimal("0.50"))  # room for five gold leases beyond the estimate's three
    _work_until_done(job, make_worker)
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert job_spent(job) <= job.budget_cap  # type: ignore[operator]
    beyond = BudgetReservation.objects.filter(job=job, key__contains=":gold:")
    assert beyond.count() == 5  # the estimate's three gold leases, then five more until the cap is reached
    assert Job.objects.get(pk=job.pk).gold_leases_priced == 0
    assert Assignment.objects.filter(job=job, hit__is_gold=False, state="approved").count() == 20


def test_with_room_the_boost_hands_out_its_gold_and_reserves_each(make_worker: Any) -> None:
    job = _boosted_job(cap_over_estimate=Decimal("100"))
    _work_until_done(job, make_worker)
    job.refresh_from_db()
    gold = Assignment.objects.filter(job=job, hit__is_gold=True).count()
    boosted = BudgetReservation.objects.filter(job=job, key__contains=":gold:").count()
    assert gold > estimate_job_cost(job).gold_assignments  # the boost did add gold
    assert boosted == gold - estimate_job_cost(job).gold_assignments  # each gold lease past the priced ones, once
    # Reserved before it was spent: the review never had to raise the reservation to cover the spend.
    assert not BudgetReservation.objects.filter(job=job, key__contains=":true-up:").exists()
    assert job_spent(job) <= job.budget_reserved


def test_a_raised_gold_rate_is_reserved_once_not_again_per_gold_lease(make_worker: Any) -> None:
    """Raising a running job's gold rate reserves the new estimate's extra gold with the change; those
    leases are then handed out against it, not reserved a second time each."""
    from tasks.services.jobs import configure_job

    job = JobFactory(redundancy=1, reward=Decimal("0.10"), gold_rate=0.1)
    ItemFactory.create_batch(20, job=job)
    for n in range(10):
        ItemFactory(job=job, external_id=f"g{n}", is_gold=True, gold_answer="pos")
    job = publish_job(job=job, actor=SYSTEM)
    priced_at_publish = Job.objects.get(pk=job.pk).gold_leases_priced
    edited = Job.objects.get(pk=job.pk)
    edited.gold_rate = 0.5
    configure_job(job=edited, actor=SYSTEM)
    job.refresh_from_db()
    raised = estimate_job_cost(job).gold_assignments
    assert raised > priced_at_publish
    assert job.gold_leases_priced == raised
    increase = BudgetReservation.objects.get(job=job, key__contains=":price:").amount
    assert increase == (raised - priced_at_publish) * Decimal("0.10")
    _work_until_done(job, make_worker)
    gold = Assignment.objects.filter(job=job, hit__is_gold=True).count()
    beyond = BudgetReservation.objects.filter(job=job, key__contains=":gold:").count()
    assert beyond == max(gold - raised, 0)
    job.refresh_from_db()
    assert job_spent(job) <= job.budget_reserved
    assert not BudgetReservation.objects.filter(job=job, key__contains=":true-up:").exists()
