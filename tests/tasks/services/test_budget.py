"""Budgets: reservations within caps, releases, settlement, monthly caps, alerts, more answers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from tasks.models import BudgetAlert, BudgetReservation, Hit, HitState, Job, JobState, MonthlyBudget
from tasks.reports.estimate import estimate_job_cost
from tasks.services.budget import (
    BudgetExceeded,
    check_budget_alerts,
    month_of,
    release_budget,
    reserve_budget,
    set_monthly_cap,
)
from tasks.services.errors import ServiceError
from tasks.services.extra_answers import request_more_answers
from tasks.services.publishing import cancel_job, check_publishable, publish_job
from tasks.services.review_batch import approve_assignments
from tests.factories import ItemFactory, JobFactory
from tests.tasks.finance_helpers import submit_work
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
D = Decimal


def draft_job(items: int = 10, **fields) -> Job:
    job = JobFactory(**fields)
    ItemFactory.create_batch(items, job=job)
    return job


def test_publishing_reserves_the_worst_case_cost(actor):
    job = publish_job(job=draft_job(items=10, redundancy=3, reward=D("0.05")), actor=actor)
    assert job.budget_reserved == D("1.50")
    row = BudgetReservation.objects.get(job=job)
    assert row.key == f"job:{job.pk}:publish" and row.amount == D("1.50") and row.month == month_of(timezone.now())
    assert AuditEvent.objects.filter(action="budget.reserved", object_id=str(job.pk)).count() == 1


def test_publishing_over_the_cap_is_refused_with_a_clear_message_and_changes_nothing(actor):
    job = draft_job(items=10, redundancy=3, reward=D("0.05"), budget_cap=D("1.00"))
    with pytest.raises(BudgetExceeded, match=r"needs 1.50 USD but only 1.00 of its 1.00 USD budget cap is left"):
        check_publishable(job)
    with pytest.raises(BudgetExceeded):
        publish_job(job=job, actor=actor)
    job.refresh_from_db()
    assert job.state == JobState.DRAFT and job.budget_reserved == 0
    assert not Hit.objects.filter(job=job).exists() and not BudgetReservation.objects.exists()


def test_a_reservation_is_idempotent_on_its_key(actor):
    job = JobFactory(budget_cap=D("1.00"))
    first, created = reserve_budget(job=job, amount=D("0.60"), key="k", actor=actor)
    again, created_again = reserve_budget(job=job, amount=D("0.60"), key="k", actor=actor)
    assert created and not created_again and first.pk == again.pk
    assert Job.objects.get(pk=job.pk).budget_reserved == D("0.60")
    with pytest.raises(BudgetExceeded):
        reserve_budget(job=job, amount=D("0.41"), key="k2", actor=actor)
    reserve_budget(job=job, amount=D("0.40"), key="k3", actor=actor)
    assert Job.objects.get(pk=job.pk).budget_reserved == D("1.00")


def test_small_reservations_may_fill_a_cap_exactly(actor):
    # On SQLite the sums are floats: 0.80 + 0.05 drifted to 0.8500000000000001 and refused the last 0.10.
    month = month_of(timezone.now())
    set_monthly_cap(month=month, cap=D("0.95"), actor=actor)
    job = JobFactory(budget_cap=D("0.95"))
    for n, amount in enumerate(["0.80", "0.05", "0.10"]):
        reserve_budget(job=job, amount=D(amount), key=f"step-{n}", actor=actor)
    assert Job.objects.get(pk=job.pk).budget_reserved == D("0.95")
    assert MonthlyBudget.objects.get(month=month).reserved == D("0.95")
    with pytest.raises(BudgetExceeded):
        reserve_budget(job=job, amount=D("0.0001"), key="over", actor=actor)
    release_budget(job=job, amount=D("0.15"), key="back", actor=actor)
    reserve_budget(job=job, amount=D("0.15"), key="again", actor=actor)
    assert Job.objects.get(pk=job.pk).budget_reserved == D("0.95")


def test_a_release_never_goes_below_zero_and_happens_once(actor):
    job = JobFactory()
    reserve_budget(job=job, amount=D("0.30"), key="r", actor=actor)
    assert release_budget(job=job, amount=D("5"), key="rel", actor=actor) == D("0.30")
    assert release_budget(job=job, amount=D("5"), key="rel", actor=actor) == D("0.30")  # the same release
    assert Job.objects.get(pk=job.pk).budget_reserved == 0
    assert BudgetReservation.objects.get(key="rel").amount == D("-0.30")
    assert release_budget(job=job, amount=D("1"), key="rel2", actor=actor) == 0
    assert not BudgetReservation.objects.filter(key="rel2").exists()


def test_the_monthly_cap_holds_across_jobs(actor):
    month = month_of(timezone.now())
    set_monthly_cap(month=month, cap=D("2.00"), actor=actor)
    publish_job(job=draft_job(items=10, redundancy=3), actor=actor)  # 1.50
    second = draft_job(items=10, redundancy=3)
    with pytest.raises(BudgetExceeded, match="monthly cap"):
        check_publishable(second)
    with pytest.raises(BudgetExceeded, match="monthly cap"):
        publish_job(job=second, actor=actor)
    assert MonthlyBudget.objects.get(month=month).reserved == D("1.50")
    with pytest.raises(ServiceError, match="cannot be lower"):
        set_monthly_cap(month=month, cap=D("1.00"), actor=actor)
    assert AuditEvent.objects.filter(action="budget.monthly_cap_set").count() == 1


def test_cancelling_releases_what_was_not_spent(actor, make_published_job, make_worker):
    job = make_published_job(items=4, redundancy=1, reward=D("0.05"))
    submit_work(job, make_worker())
    approve_assignments(job=job, actor=actor)
    cancel_job(job=job, actor=actor)
    job.refresh_from_db()
    assert job.budget_reserved == D("0.05")  # exactly what was spent


def test_a_completed_job_settles_its_reservation_once_all_work_is_reviewed(actor, make_published_job, make_worker):
    job = make_published_job(items=2, redundancy=1, reward=D("0.05"), gold_rate=0.0)
    worker = make_worker()
    submit_work(job, worker)
    submit_work(job, worker)
    assert Job.objects.get(pk=job.pk).state == JobState.COMPLETED
    approve_assignments(job=job, actor=actor)
    assert Job.objects.get(pk=job.pk).budget_reserved == D("0.10")


def test_alerts_fire_once_at_each_threshold_with_email_when_configured(
    actor, make_published_job, make_worker, settings, django_capture_on_commit_callbacks
):
    settings.FINANCE_ALERT_EMAILS = ["finance@example.org"]
    job = make_published_job(items=5, redundancy=1, reward=D("0.10"), budget_cap=D("0.50"))
    worker = make_worker()
    for expected in ([], [], [50], [50, 80], [50, 80, 100]):
        submit_work(job, worker)
        with django_capture_on_commit_callbacks(execute=True):
            approve_assignments(job=job, actor=actor)
        assert sorted(BudgetAlert.objects.filter(job=job).values_list("threshold", flat=True)) == expected
    assert AuditEvent.objects.filter(action="budget.alert").count() == 3
    assert check_budget_alerts(job=job, actor=actor) == []
    assert [m.subject.split()[-4] for m in mail.outbox] == ["50%", "80%", "100%"]
    assert mail.outbox[0].to == ["finance@example.org"]


def test_no_email_is_sent_when_no_recipients_are_configured(
    actor, make_published_job, make_worker, django_capture_on_commit_callbacks
):
    job = make_published_job(items=1, redundancy=1, reward=D("0.10"), budget_cap=D("0.10"))
    submit_work(job, make_worker())
    with django_capture_on_commit_callbacks(execute=True):
        approve_assignments(job=job, actor=actor)
    assert BudgetAlert.objects.filter(job=job).count() == 3 and mail.outbox == []


def test_more_answers_are_reserved_first_and_refused_over_the_cap(actor, make_published_job, make_worker):
    job = make_published_job(items=2, redundancy=1, reward=D("0.05"), budget_cap=D("0.20"))
    worker = make_worker()
    first = submit_work(job, worker)
    submit_work(job, worker)
    assert Job.objects.get(pk=job.pk).state == JobState.COMPLETED
    hit_ids = list(Hit.objects.filter(job=job).values_list("pk", flat=True))
    assert request_more_answers(job=job, hit_ids=hit_ids, extra=1, actor=actor) == 2
    job.refresh_from_db()
    assert job.budget_reserved == D("0.20") and job.state == JobState.PUBLISHED
    assert set(Hit.objects.filter(job=job).values_list("state", flat=True)) == {HitState.OPEN}
    with pytest.raises(BudgetExceeded):
        request_more_answers(job=job, hit_ids=[first.hit_id], extra=1, actor=actor)
    assert Hit.objects.get(pk=first.hit_id).assignments_wanted == 2


def test_the_estimate_counts_fees_gold_and_cost_per_label():
    job = draft_job(items=10, redundancy=12, reward=D("0.50"), marketplace="mturk", gold_rate=0.2)
    ItemFactory.create_batch(2, job=job, is_gold=True, gold_answer="pos")
    estimate = estimate_job_cost(job)
    assert (estimate.items, estimate.gold_items, estimate.assignments) == (10, 2, 120)
    assert estimate.fee == D("0.20")  # 40%: 12 assignments per HIT
    assert estimate.rewards == D("60.00") and estimate.fees == D("24.00")
    assert estimate.gold_assignments == 30  # 0.2 / 0.8 per paid assignment
    assert estimate.gold_overhead == D("0.60") * 30  # gold Hits have one assignment each: 20%
    assert estimate.total == D("102.00") and estimate.cost_per_label == D("10.20")
    assert estimate.mturk_split is not None and estimate.mturk_split.saving == D("12.00")


def test_monthly_caps_are_kept_per_month(actor):
    set_monthly_cap(month=date(2030, 5, 17), cap=D("3"), actor=actor)
    assert MonthlyBudget.objects.get().month == date(2030, 5, 1)


def test_a_months_cap_holds_the_jobs_of_its_own_currency_only(actor):
    """One cap per month and currency: a euro job neither fills nor is held by the dollar cap, and the euro
    cap holds it; cancelling gives the euros back to the euro cap."""
    month = month_of(timezone.now())
    set_monthly_cap(month=month, cap=D("1.00"), actor=actor)
    set_monthly_cap(month=month, cap=D("2.00"), currency="EUR", actor=actor)
    euros = draft_job(items=10, redundancy=3)  # 1.50 at the job's price
    Job.objects.filter(pk=euros.pk).update(currency="EUR")
    euros.refresh_from_db()
    publish_job(job=euros, actor=actor)
    caps = {row.currency: row for row in MonthlyBudget.objects.filter(month=month)}
    assert caps["USD"].reserved == 0 and caps["EUR"].reserved == D("1.50")
    more_euros = draft_job(items=10, redundancy=3)
    Job.objects.filter(pk=more_euros.pk).update(currency="EUR")
    more_euros.refresh_from_db()
    with pytest.raises(BudgetExceeded, match=r"2\.00 EUR monthly cap"):
        publish_job(job=more_euros, actor=actor)
    dollars = draft_job(items=6, redundancy=3)  # 0.90: fits the dollar cap whatever the euros hold
    publish_job(job=dollars, actor=actor)
    assert MonthlyBudget.objects.get(month=month, currency="USD").reserved == D("0.90")
    cancel_job(job=euros, actor=actor)
    assert MonthlyBudget.objects.get(month=month, currency="EUR").reserved == 0
    assert MonthlyBudget.objects.get(month=month, currency="USD").reserved == D("0.90")
