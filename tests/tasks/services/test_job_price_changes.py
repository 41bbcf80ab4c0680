"""A running job's price and currency: a higher price reserves its cost first, the currency never changes,
and a remote marketplace keeps the price its work was posted at (service, API and admin form)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from tasks.models import BudgetReservation, CostEntry, Job
from tasks.services.budget import job_spent
from tasks.services.collection import submit_assignment
from tasks.services.errors import ServiceError
from tasks.services.jobs import configure_job
from tasks.services.pool import assign_next_hit
from tasks.services.publishing import publish_job
from tasks.services.review_batch import approve_assignments
from tests.conftest import SYSTEM
from tests.tasks.services.mturk_helpers import mturk_job
from tests.tasks.test_admin import job_form_data
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db


def _edited(job: Job, **fields: Any) -> Job:
    edited = Job.objects.get(pk=job.pk)
    for name, value in fields.items():
        setattr(edited, name, value)
    return edited


def _work_and_approve(job: Job, make_worker: Callable[..., Any], count: int) -> None:
    for _ in range(count):
        worker = make_worker()
        assignment = assign_next_hit(job=job, worker=worker)
        submit_assignment(assignment=assignment, worker=worker, answers={assignment.hit.items.get().pk: "pos"})
    approve_assignments(job=job, actor=SYSTEM)


def test_a_higher_price_the_budget_cannot_cover_is_refused_and_nothing_overspends(
    make_published_job: Callable[..., Job], make_worker: Callable[..., Any]
) -> None:
    job = make_published_job(items=4, redundancy=1, reward=Decimal("0.10"), budget_cap=Decimal("0.40"))
    _work_and_approve(job, make_worker, 1)
    with pytest.raises(ServiceError, match=r"new price: Job \d+ needs 3\.60 USD but only 0\.00 of its"):
        configure_job(job=_edited(job, reward=Decimal("1.00")), actor=SYSTEM)
    job.refresh_from_db()
    assert job.reward == Decimal("0.10") and job.budget_reserved == Decimal("0.40")
    _work_and_approve(job, make_worker, 3)
    assert job_spent(job) == Decimal("0.40") <= job.budget_cap  # type: ignore[operator]


def test_a_higher_price_reserves_the_difference_first(make_published_job: Callable[..., Job]) -> None:
    job = make_published_job(items=4, redundancy=1, reward=Decimal("0.10"), budget_cap=Decimal("5.00"))
    configure_job(job=_edited(job, reward=Decimal("0.25")), actor=SYSTEM)
    job.refresh_from_db()
    assert job.reward == Decimal("0.25")
    assert job.budget_reserved == Decimal("1.00")  # 0.40 at publish + 4 x 0.15
    raised = BudgetReservation.objects.get(job=job, key__startswith=f"job:{job.pk}:price:")
    assert raised.amount == Decimal("0.60")
    configure_job(job=_edited(job, reward=Decimal("0.20")), actor=SYSTEM)  # lower: nothing more reserved
    job.refresh_from_db()
    assert job.budget_reserved == Decimal("1.00")
    assert AuditEvent.objects.filter(action="job.configured", object_id=job.pk).count() == 2


def test_the_currency_of_a_running_job_never_changes(make_published_job: Callable[..., Job]) -> None:
    job = make_published_job(items=1, redundancy=1, reward=Decimal("0.10"))
    with pytest.raises(ServiceError, match="currency cannot change once the job is published"):
        configure_job(job=_edited(job, currency="EUR"), actor=SYSTEM)
    assert Job.objects.get(pk=job.pk).currency == "USD"
    assert not CostEntry.objects.filter(currency="EUR").exists()


def test_a_posted_mturk_price_stays_as_posted() -> None:
    job = publish_job(job=mturk_job(2, reward=Decimal("0.10")), actor=SYSTEM)
    with pytest.raises(ServiceError, match="posted on Amazon Mechanical Turk"):
        configure_job(job=_edited(job, reward=Decimal("0.50")), actor=SYSTEM)
    assert Job.objects.get(pk=job.pk).reward == Decimal("0.10")


def test_the_api_answers_400_with_the_sentence(api: APIClient, make_published_job: Callable[..., Job]) -> None:
    job = make_published_job(items=4, redundancy=1, reward=Decimal("0.10"), budget_cap=Decimal("0.40"))
    response = api.patch(f"/api/jobs/{job.pk}/", {"reward": "1.00"}, format="json")
    assert response.status_code == 400, response.content
    assert "budget cap is left (0.40 already reserved); raise the cap" in response.content.decode()
    response = api.patch(f"/api/jobs/{job.pk}/", {"currency": "EUR"}, format="json")
    assert response.status_code == 400 and "currency cannot change" in response.content.decode()
    assert Job.objects.get(pk=job.pk).reward == Decimal("0.10")


def test_the_admin_form_shows_the_refusal_on_the_field(
    ops_manager: Any, login_client: Callable[[Any], Client], make_published_job: Callable[..., Job]
) -> None:
    job = make_published_job(items=4, redundancy=1, reward=Decimal("0.10"), budget_cap=Decimal("0.40"))
    fields = {"name": job.name, "instructions": job.instructions, "budget_cap": "0.40", "reward": "1.00"}
    response = login_client(ops_manager).post(reverse("admin:tasks_job_change", args=[job.pk]), job_form_data(**fields))
    assert response.status_code == 200
    assert "budget cap is left (0.40 already reserved); raise the cap" in response.content.decode()
    assert Job.objects.get(pk=job.pk).reward == Decimal("0.10")


def test_mturk_and_ground_truth_jobs_are_priced_in_us_dollars(
    api: APIClient, ops_manager: Any, login_client: Callable[[Any], Client]
) -> None:
    """Their marketplaces charge in USD, and the ledger, tallies and caps add a job's rows in one currency."""
    from tests.tasks.api.test_job_budget_prelabel_api import NEW_JOB

    for marketplace in ("mturk", "groundtruth"):
        response = api.post("/api/jobs/", {**NEW_JOB, "marketplace": marketplace, "currency": "EUR"}, format="json")
        assert response.status_code == 400, response.content
        assert "charges in US dollars" in response.content.decode()
    assert api.post("/api/jobs/", {**NEW_JOB, "currency": "EUR"}, format="json").status_code == 201  # our own pool
    form = job_form_data(marketplace="mturk", currency="EUR", name="EUR on MTurk")
    response = login_client(ops_manager).post(reverse("admin:tasks_job_add"), form)
    assert response.status_code == 200 and "charges in US dollars" in response.content.decode()
    assert not Job.objects.filter(name="EUR on MTurk").exists()
    with pytest.raises(ServiceError, match="charges in US dollars"):
        configure_job(job=mturk_job(1, currency="EUR"), actor=SYSTEM)


def test_a_higher_price_the_months_cap_cannot_cover_is_refused_with_that_cap_named(
    make_published_job: Callable[..., Job],
) -> None:
    from django.utils import timezone

    from tasks.models import MonthlyBudget
    from tasks.services.budget import set_monthly_cap

    job = make_published_job(items=4, redundancy=1, reward=Decimal("0.10"), budget_cap=None)
    month = timezone.now().date().replace(day=1)
    held = MonthlyBudget.objects.filter(month=month).values_list("reserved", flat=True).first() or Decimal(0)
    set_monthly_cap(month=month, cap=held + Decimal("0.20"), actor=SYSTEM)
    with pytest.raises(ServiceError, match=r"new price: .*monthly cap for \d{4}-\d{2} is left"):
        configure_job(job=_edited(job, reward=Decimal("0.25")), actor=SYSTEM)  # 0.60 more
    assert Job.objects.get(pk=job.pk).reward == Decimal("0.10")
    configure_job(job=_edited(job, reward=Decimal("0.15")), actor=SYSTEM)  # 0.20 more: fits
    assert Job.objects.get(pk=job.pk).reward == Decimal("0.15")
