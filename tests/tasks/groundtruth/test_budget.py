"""Ground Truth and the budget: publishing reserves what the labeling job can cost (or is refused before
AWS is asked), and the end of the labeling job releases what it did not spend."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from tasks.models import BudgetReservation, Job, JobState, LabelingJob, MonthlyBudget
from tasks.services.budget import BudgetExceeded, job_spent, month_of
from tasks.services.groundtruth.running import configure_labeling_job, follow_labeling_jobs, publish_labeling_job
from tests.tasks.groundtruth.test_end_to_end import ACTOR, PRICE, SimulatedRun, describe

pytestmark = pytest.mark.django_db
PUBLIC_TEAM = "arn:aws:sagemaker:us-east-1:394669845002:workteam/public-crowd/default"
PER_OBJECT = Decimal("0.08") + PRICE * 5  # first tier's object charge + five answers at the task price


def _configure(job: Job) -> LabelingJob:
    return configure_labeling_job(
        job=job, actor=ACTOR, workforce="public", task_price=PRICE, workers_per_object=5, workteam_arn=PUBLIC_TEAM
    )


def _month(cap: str) -> MonthlyBudget:
    return MonthlyBudget.objects.create(month=month_of(timezone.now()), cap=Decimal(cap))


def test_publishing_reserves_the_cost_and_a_stopped_job_gives_back_what_it_did_not_spend(aws: Any, birds_job: Job):
    connector, stub, s3 = aws
    month = _month("500")
    name = _configure(birds_job).name
    stub.add_response("create_labeling_job", {"LabelingJobArn": f"arn:aws:sagemaker:us-east-1:1:labeling-job/{name}"})
    publish_labeling_job(job=birds_job, actor=ACTOR, connector=connector)
    birds_job.refresh_from_db()
    assert birds_job.budget_reserved == 302 * PER_OBJECT == Decimal("78.52")
    assert BudgetReservation.objects.get(key=f"groundtruth:{name}:publish").amount == Decimal("78.52")
    month.refresh_from_db()
    assert month.reserved == Decimal("78.52")

    first = SimulatedRun(s3, name).write_iteration(1)
    stub.add_response("describe_labeling_job", describe(name, "InProgress"), {"LabelingJobName": name})
    follow_labeling_jobs(actor=ACTOR, connector=connector)
    birds_job.refresh_from_db()
    assert birds_job.budget_reserved == Decimal("78.52")  # still running: nothing released yet

    stub.add_response("describe_labeling_job", describe(name, "Stopped"), {"LabelingJobName": name})
    follow_labeling_jobs(actor=ACTOR, connector=connector)
    birds_job.refresh_from_db()
    month.refresh_from_db()
    spent = job_spent(birds_job)
    assert spent == PRICE * first > 0  # the answers of the first iteration, no object finished
    assert birds_job.budget_reserved == spent == month.reserved
    # Ended and settled once: following again books and releases nothing more.
    rows = BudgetReservation.objects.count()
    assert follow_labeling_jobs(actor=ACTOR, connector=connector) == 0
    assert BudgetReservation.objects.count() == rows


def test_a_month_without_room_refuses_publishing_before_aws_is_asked(aws: Any, birds_job: Job):
    connector, _stub, _ = aws  # no create_labeling_job response queued: a call to AWS would fail the test
    _month("50")
    labeling_job = _configure(birds_job)
    with pytest.raises(BudgetExceeded):
        publish_labeling_job(job=birds_job, actor=ACTOR, connector=connector)
    labeling_job.refresh_from_db()
    birds_job.refresh_from_db()
    assert labeling_job.arn == "" and birds_job.state == JobState.DRAFT
    assert birds_job.budget_reserved == 0 and not BudgetReservation.objects.exists()


def test_a_failed_labeling_job_gives_its_whole_reservation_back(aws: Any, birds_job: Job):
    connector, stub, _ = aws
    name = _configure(birds_job).name
    stub.add_response("create_labeling_job", {"LabelingJobArn": f"arn:aws:sagemaker:us-east-1:1:labeling-job/{name}"})
    publish_labeling_job(job=birds_job, actor=ACTOR, connector=connector, budget=Decimal("26"))
    birds_job.refresh_from_db()
    # the budget pays for 100 objects at the first tier, so MaxLabeledObjects (and the reservation) stop there
    assert birds_job.budget_reserved == 100 * PER_OBJECT
    failed = {**describe(name, "Failed"), "FailureReason": "ClientError: the role cannot read the manifest"}
    stub.add_response("describe_labeling_job", failed, {"LabelingJobName": name})
    follow_labeling_jobs(actor=ACTOR, connector=connector)
    birds_job.refresh_from_db()
    assert birds_job.budget_reserved == 0 and job_spent(birds_job) == 0
    assert BudgetReservation.objects.filter(key=f"groundtruth:{name}:settle").exists()
