"""Money audit, finding 7: a Ground Truth publish AWS refuses for good gives its reservation back; a
publish after the draft was reconfigured holds the new worst case (reserving or releasing only the
difference, so retries stay idempotent); and a reservation key reused for another amount or job is refused
(``ReservationConflict``), never passed silently. SageMaker through botocore's Stubber, S3 through moto."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from tasks.models import BudgetReservation, Job, JobState, LabelingJob, MonthlyBudget
from tasks.services.budget import ReservationConflict, month_of, reserve_budget
from tasks.services.groundtruth.costs import estimated_cost
from tasks.services.groundtruth.running import configure_labeling_job, publish_labeling_job
from tests.conftest import SYSTEM
from tests.factories import JobFactory
from tests.tasks.groundtruth import test_end_to_end as end_to_end
from workforce.marketplaces.base import MarketplaceError

pytestmark = pytest.mark.django_db
ACTOR, PRICE = end_to_end.ACTOR, end_to_end.PRICE
aws, birds_job = end_to_end.aws, end_to_end.birds_job  # the Ground Truth tests' fixtures
TEAM = "arn:aws:sagemaker:us-east-1:394669845002:workteam/public-crowd/default"
OBJECTS = 302  # the birds job's items


def _configure(job: Job, workers: int) -> LabelingJob:
    return configure_labeling_job(
        job=job, actor=ACTOR, workforce="public", task_price=PRICE, workers_per_object=workers, workteam_arn=TEAM
    )


def _refuse(stub: Any, code: str) -> None:
    stub.add_client_error("create_labeling_job", service_error_code=code, service_message="no", http_status_code=400)


def _accept(stub: Any, name: str) -> None:
    stub.add_response("create_labeling_job", {"LabelingJobArn": f"arn:aws:sagemaker:us-east-1:1:labeling-job/{name}"})


def _held(job: Job) -> tuple[Decimal, Decimal]:
    job.refresh_from_db()
    return job.budget_reserved, MonthlyBudget.objects.get(month=month_of(timezone.now())).reserved


def test_a_publish_aws_refuses_for_good_gives_its_reservation_back(aws: Any, birds_job: Job) -> None:
    connector, stub, _ = aws
    MonthlyBudget.objects.create(month=month_of(timezone.now()), cap=Decimal("500"))
    labeling_job = _configure(birds_job, workers=1)
    _refuse(stub, "ValidationException")

    with pytest.raises(MarketplaceError) as refused:
        publish_labeling_job(job=birds_job, actor=ACTOR, connector=connector)

    assert refused.value.permanent
    assert _held(birds_job) == (0, 0)
    assert birds_job.state == JobState.DRAFT
    rows = list(BudgetReservation.objects.order_by("id").values_list("key", "amount"))
    name = labeling_job.name
    expected = estimated_cost(labeling_job, OBJECTS)
    assert rows == [(f"groundtruth:{name}:publish", expected), (f"groundtruth:{name}:publish:1:refused", -expected)]


def test_republishing_after_a_refusal_and_a_reconfiguration_holds_the_new_worst_case(aws: Any, birds_job: Job) -> None:
    connector, stub, _ = aws
    MonthlyBudget.objects.create(month=month_of(timezone.now()), cap=Decimal("500"))
    _configure(birds_job, workers=1)
    _refuse(stub, "ValidationException")
    with pytest.raises(MarketplaceError):
        publish_labeling_job(job=birds_job, actor=ACTOR, connector=connector)

    labeling_job = _configure(birds_job, workers=5)  # still a draft: allowed
    _accept(stub, labeling_job.name)
    publish_labeling_job(job=birds_job, actor=ACTOR, connector=connector)

    needed = estimated_cost(labeling_job, OBJECTS)
    assert needed == Decimal("78.52")
    assert _held(birds_job) == (needed, needed)
    assert birds_job.state == JobState.PUBLISHED
    assert BudgetReservation.objects.filter(key=f"groundtruth:{labeling_job.name}:publish:2:302x5@0.036").exists()


def test_a_transient_failure_keeps_the_reservation_and_the_retry_reserves_nothing_more(
    aws: Any, birds_job: Job
) -> None:
    connector, stub, _ = aws
    labeling_job = _configure(birds_job, workers=5)
    _refuse(stub, "ThrottlingException")
    with pytest.raises(MarketplaceError) as failed:
        publish_labeling_job(job=birds_job, actor=ACTOR, connector=connector)
    assert not failed.value.permanent
    birds_job.refresh_from_db()
    assert birds_job.budget_reserved == Decimal("78.52")  # held for the retry

    _accept(stub, labeling_job.name)
    publish_labeling_job(job=birds_job, actor=ACTOR, connector=connector)

    birds_job.refresh_from_db()
    assert birds_job.budget_reserved == Decimal("78.52")
    assert BudgetReservation.objects.count() == 1


def test_reconfiguring_after_a_transient_failure_reserves_or_releases_only_the_difference(
    aws: Any, birds_job: Job
) -> None:
    connector, stub, _ = aws
    MonthlyBudget.objects.create(month=month_of(timezone.now()), cap=Decimal("500"))
    _configure(birds_job, workers=1)
    _refuse(stub, "ThrottlingException")
    with pytest.raises(MarketplaceError):
        publish_labeling_job(job=birds_job, actor=ACTOR, connector=connector)
    one = estimated_cost(LabelingJob.objects.get(job=birds_job), OBJECTS)
    assert _held(birds_job) == (one, one)

    five = _configure(birds_job, workers=5)
    _refuse(stub, "ThrottlingException")
    with pytest.raises(MarketplaceError):
        publish_labeling_job(job=birds_job, actor=ACTOR, connector=connector)
    assert _held(birds_job) == (Decimal("78.52"), Decimal("78.52"))  # not 35.032 + 78.52

    three = _configure(birds_job, workers=3)  # cheaper: the excess goes back
    _accept(stub, three.name)
    publish_labeling_job(job=birds_job, actor=ACTOR, connector=connector)
    needed = estimated_cost(three, OBJECTS)
    assert _held(birds_job) == (needed, needed)
    keys = list(BudgetReservation.objects.order_by("id").values_list("key", "amount"))
    assert keys == [
        (f"groundtruth:{five.name}:publish", one),
        (f"groundtruth:{five.name}:publish:1:302x5@0.036", Decimal("78.52") - one),
        (f"groundtruth:{five.name}:publish:2:302x3@0.036:release", needed - Decimal("78.52")),
    ]


def test_a_reservation_key_reused_for_another_amount_or_job_is_refused() -> None:
    job, other = JobFactory(), JobFactory()
    row, created = reserve_budget(job=job, amount=Decimal("10.00"), key="k", actor=SYSTEM)
    assert created
    assert reserve_budget(job=job, amount=Decimal("10"), key="k", actor=SYSTEM) == (row, False)  # a retry

    with pytest.raises(ReservationConflict, match=r"'k' reserved 10\.0000 for job"):
        reserve_budget(job=job, amount=Decimal("12"), key="k", actor=SYSTEM)
    with pytest.raises(ReservationConflict):
        reserve_budget(job=other, amount=Decimal("10"), key="k", actor=SYSTEM)

    job.refresh_from_db()
    other.refresh_from_db()
    assert (job.budget_reserved, other.budget_reserved) == (Decimal("10"), 0)
    assert BudgetReservation.objects.count() == 1
