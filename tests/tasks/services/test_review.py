"""Review: approve pays once, reject pays nothing and releases budget, bulk and auto-review, bonuses."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tasks.models import Assignment, AssignmentState, CostEntry, CostKind, CostStatus, GoldGrade, Job, PayMode
from tasks.services.budget import job_spent
from tasks.services.errors import InvalidTransition, ServiceError
from tasks.services.review import approve_assignment, pay_bonus, reject_assignment
from tasks.services.review_batch import approve_assignments, auto_review
from tests.conftest import SYSTEM
from tests.tasks.finance_helpers import submit_after, submit_work
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_approving_books_the_reward_once_with_the_audit_event(make_published_job, make_worker):
    job = make_published_job(items=2, redundancy=1, reward=Decimal("0.05"))
    assignment = submit_work(job, make_worker())
    approved = approve_assignment(assignment=assignment, actor=SYSTEM, feedback="thanks")
    assert approved.state == AssignmentState.APPROVED and approved.reviewed_at is not None
    entry = CostEntry.objects.get(assignment=assignment)
    assert (entry.kind, entry.amount, entry.status) == (CostKind.INTERNAL_PAY, Decimal("0.05"), CostStatus.COMMITTED)
    assert entry.worker_id == assignment.worker_id and entry.job_id == job.pk
    event = AuditEvent.objects.get(action="assignment.approved")
    assert event.object_id == str(assignment.pk) and event.after["paid"] == "0.0500" and event.reason == "thanks"
    with pytest.raises(InvalidTransition, match="approved"):
        approve_assignment(assignment=assignment, actor=SYSTEM)
    assert CostEntry.objects.filter(assignment=assignment).count() == 1


def test_rejecting_pays_nothing_and_releases_the_reserved_cost(make_published_job, make_worker):
    job = make_published_job(items=2, redundancy=1, reward=Decimal("0.05"))
    assert job.budget_reserved == Decimal("0.10")
    assignment = submit_work(job, make_worker())
    rejected = reject_assignment(assignment=assignment, actor=SYSTEM, feedback="Answers ignore the instructions.")
    assert rejected.state == AssignmentState.REJECTED
    assert not CostEntry.objects.filter(assignment=assignment).exists()
    job.refresh_from_db()
    assert job.budget_reserved == Decimal("0.05")
    assert AuditEvent.objects.get(action="assignment.rejected").reason == "Answers ignore the instructions."
    with pytest.raises(InvalidTransition):
        approve_assignment(assignment=assignment, actor=SYSTEM)


def test_a_rejection_needs_feedback(make_published_job, make_worker):
    job = make_published_job(items=1, redundancy=1)
    assignment = submit_work(job, make_worker())
    with pytest.raises(ServiceError, match="why"):
        reject_assignment(assignment=assignment, actor=SYSTEM, feedback="  ")
    assert Assignment.objects.get(pk=assignment.pk).state == AssignmentState.SUBMITTED


def test_work_not_yet_submitted_cannot_be_reviewed(make_published_job, make_worker):
    from tasks.services.pool import assign_next_hit

    job = make_published_job(items=1, redundancy=1)
    lease = assign_next_hit(job=job, worker=make_worker())
    with pytest.raises(InvalidTransition, match="accepted"):
        approve_assignment(assignment=lease, actor=SYSTEM)


def test_hourly_pay_is_rate_times_active_time_capped_by_the_duration(make_published_job, make_worker):
    job = make_published_job(
        items=2,
        redundancy=1,
        pay_mode=PayMode.HOURLY,
        hourly_rate=Decimal("18.00"),
        assignment_duration=timedelta(minutes=10),
    )
    quick = submit_after(job, make_worker(), seconds=90)  # 1.5 minutes at 18/hour = 0.45
    slow = submit_after(job, make_worker(), seconds=3600)  # capped at 10 minutes = 3.00
    approve_assignments(job=job, actor=SYSTEM)
    assert CostEntry.objects.get(assignment=quick).amount == Decimal("0.45")
    assert CostEntry.objects.get(assignment=slow).amount == Decimal("3.00")


def test_bulk_approval_is_one_pass_and_idempotent(make_published_job, make_worker):
    job = make_published_job(items=4, redundancy=2, reward=Decimal("0.07"))
    workers = [make_worker() for _ in range(2)]
    done = [submit_work(job, w) for w in workers for _ in range(4)]
    result = approve_assignments(job=job, actor=SYSTEM)
    assert result.approved == 8 and result.paid == Decimal("0.56")
    assert set(Assignment.objects.filter(pk__in=[a.pk for a in done]).values_list("state", flat=True)) == {"approved"}
    assert job_spent(job) == Decimal("0.56")
    assert AuditEvent.objects.filter(action="assignment.approved").count() == 8
    again = approve_assignments(job=job, actor=SYSTEM)
    assert again.approved == 0 and job_spent(job) == Decimal("0.56")


def test_auto_review_waits_for_the_delay_and_rejects_failed_gold(make_published_job, make_worker):
    job = make_published_job(items=3, redundancy=1, auto_approve_after=timedelta(hours=1))
    worker = make_worker()
    good = submit_work(job, worker)
    failed = submit_work(job, worker)
    # A wrong gold answer inside ``failed`` (graded the way the gold service grades it).
    answer = failed.answers.first()
    GoldGrade.objects.create(
        answer=answer, job=job, worker=worker, item=answer.item, score=0.0, created_at=timezone.now()
    )
    assert auto_review(actor=SYSTEM, now=timezone.now()).approved == 0  # too early
    result = auto_review(actor=SYSTEM, now=timezone.now() + timedelta(hours=2))
    assert (result.approved, result.rejected) == (1, 1)
    assert Assignment.objects.get(pk=good.pk).state == AssignmentState.APPROVED
    assert Assignment.objects.get(pk=failed.pk).state == AssignmentState.REJECTED
    assert not CostEntry.objects.filter(assignment=failed).exists()


def test_auto_review_rejects_only_work_whose_gold_answers_are_all_wrong(make_published_job, make_worker):
    job = make_published_job(items=4, items_per_hit=2, redundancy=1, auto_approve_after=timedelta(hours=1))
    worker = make_worker()
    mixed, all_wrong = submit_work(job, worker), submit_work(job, worker)
    # ``mixed``: one gold question missed, one passed (paid; the block policy weighs the miss);
    # ``all_wrong``: both missed (rejected).
    for page, scores in ((mixed, (0.0, 1.0)), (all_wrong, (0.0, 0.0))):
        for answer, score in zip(page.answers.order_by("id"), scores, strict=True):
            GoldGrade.objects.create(
                answer=answer, job=job, worker=worker, item=answer.item, score=score, created_at=timezone.now()
            )
    result = auto_review(actor=SYSTEM, now=timezone.now() + timedelta(hours=2))
    assert (result.approved, result.rejected) == (1, 1)
    assert Assignment.objects.get(pk=mixed.pk).state == AssignmentState.APPROVED
    assert Assignment.objects.get(pk=all_wrong.pk).state == AssignmentState.REJECTED


def test_jobs_without_an_auto_approval_delay_wait_for_a_reviewer(make_published_job, make_worker):
    job = make_published_job(items=1, redundancy=1)
    submit_work(job, make_worker())
    assert auto_review(actor=SYSTEM, now=timezone.now() + timedelta(days=30)).approved == 0


def test_a_bonus_is_paid_once_per_key_and_audited(make_published_job, make_worker):
    job = make_published_job(items=1, redundancy=1)
    worker = make_worker()
    assert pay_bonus(job=job, worker=worker, amount=Decimal("0.50"), reason="Great work", key="b1", actor=SYSTEM)
    assert not pay_bonus(job=job, worker=worker, amount=Decimal("0.50"), reason="Great work", key="b1", actor=SYSTEM)
    bonus = CostEntry.objects.get(kind=CostKind.BONUS)
    assert bonus.amount == Decimal("0.50") and bonus.worker == worker and bonus.memo == "Great work"
    assert AuditEvent.objects.filter(action="bonus.paid").count() == 1
    with pytest.raises(ServiceError, match="positive"):
        pay_bonus(job=job, worker=worker, amount=Decimal("0"), reason="x", key="b2", actor=SYSTEM)
    # the same key for another bonus is refused, not reported as "already paid" (it was not this bonus)
    for other in ({"amount": Decimal("5.00"), "worker": worker}, {"amount": Decimal("0.50"), "worker": make_worker()}):
        with pytest.raises(ServiceError, match="was used for another bonus"):
            pay_bonus(job=job, reason="More", key="b1", actor=SYSTEM, **other)
    assert CostEntry.objects.filter(kind=CostKind.BONUS).count() == 1


def test_a_bonus_key_booked_for_another_worker_while_this_call_waited_is_refused(
    make_published_job, make_worker, monkeypatch
):
    """Two calls with one key for two workers at once: the one that waited on the other's reservation is
    told the key was used for another bonus, not that its worker was already paid."""
    from tasks.services import review

    job = make_published_job(items=1, redundancy=1)
    first, second = make_worker(), make_worker()
    reserve = review.reserve_budget

    def the_other_call_commits_first(**kwargs):
        monkeypatch.setattr(review, "reserve_budget", reserve)
        assert pay_bonus(job=job, worker=first, amount=Decimal("0.50"), reason="Great", key="k", actor=SYSTEM)
        return reserve(**kwargs)

    monkeypatch.setattr(review, "reserve_budget", the_other_call_commits_first)
    with pytest.raises(ServiceError, match="was used for another bonus"):
        pay_bonus(job=job, worker=second, amount=Decimal("0.50"), reason="Great", key="k", actor=SYSTEM)
    # (here the other call ran inside this one's transaction, so the refusal rolled both back; in production
    # they are two transactions and the other worker's bonus stands)
    assert not CostEntry.objects.filter(kind=CostKind.BONUS, worker=second).exists()


def test_a_bonus_over_the_budget_cap_is_refused_and_books_nothing(make_published_job, make_worker):
    from tasks.services.budget import BudgetExceeded

    job = make_published_job(items=1, redundancy=1, budget_cap=Decimal("1.00"))
    with pytest.raises(BudgetExceeded, match="cap"):
        pay_bonus(job=job, worker=make_worker(), amount=Decimal("0.99"), reason="too much", key="b", actor=SYSTEM)
    assert not CostEntry.objects.filter(kind=CostKind.BONUS).exists()
    assert Job.objects.get(pk=job.pk).budget_reserved == Decimal("0.05")


def test_the_beat_task_auto_reviews_due_work(make_published_job, make_worker):
    from tasks.tasks import auto_review_task

    job = make_published_job(items=1, redundancy=1, auto_approve_after=timedelta(0))
    assignment = submit_work(job, make_worker())
    assert auto_review_task.delay().get() == {"approved": 1, "rejected": 0}
    assert Assignment.objects.get(pk=assignment.pk).state == AssignmentState.APPROVED
    event = AuditEvent.objects.get(action="assignment.approved")
    assert event.actor_label == "auto-review"


def _grade(assignment: Assignment, score: float) -> None:
    answer = assignment.answers.first()
    GoldGrade.objects.create(
        answer=answer,
        job=assignment.job,
        worker=assignment.worker,
        item=answer.item,
        score=score,
        created_at=timezone.now(),
    )


def test_approving_what_passed_gold_leaves_failed_and_ungraded_work_for_review(make_published_job, make_worker):
    from tasks.services.review_batch import approve_passing_gold

    job = make_published_job(items=4, redundancy=1, reward=Decimal("0.05"))
    worker = make_worker()
    passed, failed, ungraded, partly = (submit_work(job, worker) for _ in range(4))
    _grade(passed, 1.0)
    _grade(failed, 0.0)
    _grade(partly, 0.5)  # multi-label partly right: at the pass mark
    result = approve_passing_gold(job=job, actor=SYSTEM)
    assert (result.approved, result.failed_gold, result.without_gold, result.refused) == (2, 1, 1, 0)
    states = dict(Assignment.objects.filter(job=job).values_list("pk", "state"))
    assert states == {
        passed.pk: AssignmentState.APPROVED,
        partly.pk: AssignmentState.APPROVED,
        failed.pk: AssignmentState.SUBMITTED,
        ungraded.pk: AssignmentState.SUBMITTED,
    }
    assert result.paid == Decimal("0.10") == job_spent(job)
    event = AuditEvent.objects.get(action="job.gold_passing_approved")
    assert event.object_id == str(job.pk) and event.after["approved"] == 2 and event.after["failed_gold"] == 1
    assert AuditEvent.objects.filter(action="assignment.approved").count() == 2
    again = approve_passing_gold(job=job, actor=SYSTEM)
    assert again.approved == 0 and job_spent(job) == Decimal("0.10")
