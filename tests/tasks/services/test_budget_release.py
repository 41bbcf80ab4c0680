"""When the internal pool's reservations are released, and when they rightly stay: a slot offered again keeps
its reservation, work that will never be paid gives it back, once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tasks.models import Assignment, AssignmentState, BudgetReservation, Hit, HitState, Job
from tasks.services.extra_answers import request_more_answers
from tasks.services.pool import assign_next_hit, expire_leases
from tasks.services.publishing import cancel_job
from tasks.services.quality import block_worker
from tasks.services.review import reject_assignment
from tasks.services.review_batch import approve_assignments
from tests.tasks.finance_helpers import submit_work
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
D = Decimal


def _reserved(job: Job) -> Decimal:
    return Job.objects.values_list("budget_reserved", flat=True).get(pk=job.pk)


def test_an_expired_lease_keeps_the_reservation_because_its_slot_is_offered_again(
    actor, make_published_job, make_worker
):
    job = make_published_job(items=1, redundancy=1, reward=D("0.05"), gold_rate=0.0)
    reserved = _reserved(job)
    first = make_worker()
    lease = assign_next_hit(job=job, worker=first)
    assert expire_leases(now=timezone.now() + timedelta(hours=1), job=job) == 1
    assert Assignment.objects.get(pk=lease.pk).state == AssignmentState.EXPIRED
    assert Hit.objects.get(pk=lease.hit_id).state == HitState.OPEN
    assert _reserved(job) == reserved and not BudgetReservation.objects.filter(amount__lt=0).exists()
    submit_work(job, make_worker())  # the slot is taken again and paid from that same reservation
    approve_assignments(job=job, actor=actor)
    assert _reserved(job) == reserved == D("0.05")


def test_work_a_block_returns_to_the_pool_keeps_its_reservation(actor, make_published_job, make_worker):
    job = make_published_job(items=2, redundancy=1, reward=D("0.05"), gold_rate=0.0)
    reserved = _reserved(job)
    spammer = make_worker()
    submit_work(job, spammer)
    block_worker(job=job, worker=spammer, actor=actor, reason="spam")
    assert Assignment.objects.get(worker=spammer).state == AssignmentState.RETURNED
    assert _reserved(job) == reserved  # the Hit wants that answer again, from someone else


def test_a_rejection_releases_its_unit_cost_once_and_the_true_up_keeps_it_released(
    actor, make_published_job, make_worker
):
    job = make_published_job(items=2, redundancy=1, reward=D("0.05"), gold_rate=0.0)
    kept, rejected = submit_work(job, make_worker()), submit_work(job, make_worker())
    reject_assignment(assignment=rejected, actor=actor, feedback="Off topic")
    assert _reserved(job) == D("0.05")
    release = BudgetReservation.objects.get(key=f"assignment:{rejected.pk}:release")
    assert release.amount == D("-0.05")
    approve_assignments(job=job, actor=actor, assignment_ids=[kept.pk])  # reviews true up to the spend only
    assert _reserved(job) == D("0.05")
    assert Hit.objects.get(pk=rejected.hit_id).state == HitState.COMPLETE  # not offered again
    assert AuditEvent.objects.filter(action="budget.released", object_id=str(job.pk)).count() == 1


def test_extra_answers_never_taken_are_released_when_the_job_is_cancelled(actor, make_published_job, make_worker):
    job = make_published_job(items=2, redundancy=1, reward=D("0.05"), gold_rate=0.0)
    hits = list(Hit.objects.filter(job=job).values_list("pk", flat=True))
    done = submit_work(job, make_worker())
    request_more_answers(job=job, hit_ids=hits, extra=2, actor=actor)
    assert _reserved(job) == D("0.30")
    approve_assignments(job=job, actor=actor, assignment_ids=[done.pk])
    cancel_job(job=job, actor=actor, reason="good enough")
    assert _reserved(job) == D("0.05")  # what was spent; the extra answers nobody took are given back
    cancel_release = BudgetReservation.objects.filter(job=job, reason="job cancelled").get()
    assert cancel_release.amount == D("-0.25")
