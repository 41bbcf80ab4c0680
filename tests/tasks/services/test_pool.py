from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tasks.models import Assignment, AssignmentState, Hit, HitState, JobState
from tasks.services.collection import submit_assignment
from tasks.services.errors import NoWorkAvailable, ServiceError
from tasks.services.pool import assign_next_hit, expire_leases, return_assignment
from tasks.services.publishing import pause_job

pytestmark = pytest.mark.django_db


def _answer_all(assignment, worker, label="pos"):
    items = assignment.hit.items.values_list("id", flat=True)
    return submit_assignment(assignment=assignment, worker=worker, answers={i: label for i in items})


def test_a_worker_gets_a_lease_for_the_jobs_duration(make_published_job, make_worker):
    job = make_published_job(items=2, assignment_duration=timedelta(minutes=7))
    worker = make_worker()
    now = timezone.now()
    a = assign_next_hit(job=job, worker=worker, now=now)
    assert a.state == AssignmentState.ACCEPTED
    assert a.lease_expires_at == now + timedelta(minutes=7)
    assert a.reward == job.reward
    assert Hit.objects.get(pk=a.hit_id).slots_taken == 1


def test_asking_again_returns_the_current_lease_instead_of_a_second_hit(make_published_job, make_worker):
    job = make_published_job(items=3)
    worker = make_worker()
    first = assign_next_hit(job=job, worker=worker)
    assert assign_next_hit(job=job, worker=worker).pk == first.pk
    assert Assignment.objects.filter(worker=worker).count() == 1


def test_a_worker_never_gets_the_same_hit_twice(make_published_job, make_worker):
    job = make_published_job(items=3, redundancy=3)
    worker = make_worker()
    seen = []
    for _ in range(3):
        a = assign_next_hit(job=job, worker=worker)
        seen.append(a.hit_id)
        _answer_all(a, worker)
    assert len(set(seen)) == 3
    with pytest.raises(NoWorkAvailable):
        assign_next_hit(job=job, worker=worker)


def test_a_hit_is_full_when_every_slot_is_leased(make_published_job, make_worker):
    job = make_published_job(items=1, redundancy=2)
    a1 = assign_next_hit(job=job, worker=make_worker())
    assign_next_hit(job=job, worker=make_worker())
    hit = Hit.objects.get(pk=a1.hit_id)
    assert (hit.state, hit.slots_taken) == (HitState.FULL, 2)
    with pytest.raises(NoWorkAvailable):
        assign_next_hit(job=job, worker=make_worker())


def test_an_expired_lease_returns_its_slot_to_the_pool(make_published_job, make_worker):
    job = make_published_job(items=1, redundancy=1)
    slow = make_worker()
    a = assign_next_hit(job=job, worker=slow)
    later = a.lease_expires_at + timedelta(seconds=1)
    assert expire_leases(now=later) == 1
    a.refresh_from_db()
    assert a.state == AssignmentState.EXPIRED
    hit = Hit.objects.get(pk=a.hit_id)
    assert (hit.state, hit.slots_taken) == (HitState.OPEN, 0)
    other = assign_next_hit(job=job, worker=make_worker(), now=later)
    assert other.hit_id == a.hit_id


def test_handing_out_work_reclaims_abandoned_leases_without_waiting_for_the_sweep(make_published_job, make_worker):
    job = make_published_job(items=1, redundancy=1)
    a = assign_next_hit(job=job, worker=make_worker())
    b = assign_next_hit(job=job, worker=make_worker(), now=a.lease_expires_at + timedelta(seconds=5))
    assert b.hit_id == a.hit_id
    a.refresh_from_db()
    assert a.state == AssignmentState.EXPIRED


def test_returning_a_task_frees_the_slot_for_others_but_not_for_the_returner(make_published_job, make_worker):
    job = make_published_job(items=1, redundancy=1)
    skipper = make_worker()
    a = assign_next_hit(job=job, worker=skipper)
    return_assignment(assignment=a, worker=skipper)
    a.refresh_from_db()
    assert a.state == AssignmentState.RETURNED
    with pytest.raises(NoWorkAvailable):
        assign_next_hit(job=job, worker=skipper)
    assert assign_next_hit(job=job, worker=make_worker()).hit_id == a.hit_id
    with pytest.raises(ServiceError):
        return_assignment(assignment=a, worker=skipper)


def test_paused_jobs_and_blocked_workers_get_no_work(make_published_job, make_worker, actor):
    job = make_published_job(items=2)
    blocked = make_worker(is_blocked=True)
    with pytest.raises(ServiceError, match="blocked"):
        assign_next_hit(job=job, worker=blocked)
    pause_job(job=job, actor=actor)
    job.refresh_from_db()
    assert job.state == JobState.PAUSED
    with pytest.raises(NoWorkAvailable, match="paused"):
        assign_next_hit(job=job, worker=make_worker())


def test_handing_out_work_costs_a_constant_number_of_queries(
    make_published_job, make_worker, django_assert_max_num_queries
):
    job = make_published_job(items=200, redundancy=3)
    worker = make_worker()
    for _ in range(20):
        _answer_all(assign_next_hit(job=job, worker=worker), worker)
    with django_assert_max_num_queries(10):
        assign_next_hit(job=job, worker=worker)
