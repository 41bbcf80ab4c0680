"""An ops manager configures a Ground Truth run in the admin and publishes the job like any other."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tasks.models import JobState, LabelingJob
from tasks.services.errors import ServiceError
from tasks.services.publishing import request_publish
from tests.factories import ItemFactory, JobFactory
from workforce.audit import Actor
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_configure_in_the_admin_then_publish_queues_the_labeling_job(ops_manager: Any, settings: Any) -> None:
    job = JobFactory(state=JobState.DRAFT, labels=["pos", "neg"])
    ItemFactory(job=job)
    client = Client()
    client.force_login(ops_manager)
    assert client.get("/admin/tasks/labelingjob/add/").status_code == 200
    response = client.post(
        "/admin/tasks/labelingjob/add/",
        {
            "job": job.pk,
            "task_type": "custom",
            "workforce": "private",
            "workteam_arn": "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/team",
            "task_price": "0",
            "workers_per_object": 3,
            "task_time_limit_seconds": 300,
            "task_availability_seconds": 864000,
            "max_concurrent_tasks": 1000,
            "ui_template": "<crowd-form></crowd-form>",
            "pre_annotation_lambda_arn": "",
            "consolidation_lambda_arn": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    labeling_job = LabelingJob.objects.get(job=job)
    job.refresh_from_db()
    assert job.marketplace == "groundtruth" and labeling_job.workers_per_object == 3
    assert AuditEvent.objects.filter(action="groundtruth.configured", object_id=str(job.pk)).exists()

    settings.GROUNDTRUTH_ENABLED = False
    with pytest.raises(ServiceError, match="not enabled"):
        request_publish(job=job, actor=Actor.from_user(ops_manager))


def test_a_ground_truth_job_without_settings_is_refused_with_a_sentence(settings: Any) -> None:
    settings.GROUNDTRUTH_ENABLED = True
    job = JobFactory(state=JobState.DRAFT, labels=["pos", "neg"], marketplace="groundtruth")
    ItemFactory(job=job)
    with pytest.raises(ServiceError, match="Configure job"):
        request_publish(job=job, actor=Actor.system("test"))


def test_a_month_that_cannot_take_the_labeling_jobs_cost_is_refused_when_publishing_is_requested(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from decimal import Decimal

    from django.utils import timezone

    import tasks.tasks
    from tasks.models import MonthlyBudget
    from tasks.services.budget import BudgetExceeded, month_of
    from tasks.services.groundtruth.running import configure_labeling_job

    settings.GROUNDTRUTH_ENABLED = True
    job = JobFactory(state=JobState.DRAFT, labels=["pos", "neg"])
    ItemFactory.create_batch(40, job=job)
    configure_labeling_job(
        job=job,
        actor=Actor.system("test"),
        workforce="public",
        task_price=Decimal("0.05"),
        workers_per_object=3,
        workteam_arn="arn:aws:sagemaker:us-east-1:394669845002:workteam/public-crowd/default",
    )
    job.refresh_from_db()
    assert job.marketplace == "groundtruth"
    # 40 objects x (0.08 charge + 3 x 0.05) = 9.20, more than the month has room for
    MonthlyBudget.objects.create(month=month_of(timezone.now()), cap=Decimal("9"))
    queued: list[dict[str, Any]] = []
    monkeypatch.setattr(tasks.tasks, "enqueue", lambda task, **kwargs: queued.append({"task": task.name, **kwargs}))
    with pytest.raises(BudgetExceeded):
        request_publish(job=job, actor=Actor.system("test"))
    assert queued == []  # nothing was sent to the background publisher
    MonthlyBudget.objects.update(cap=Decimal("9.20"))
    request_publish(job=job, actor=Actor.system("test"))
    assert queued == [{"task": "tasks.tasks.publish_labeling_job_task", "job_id": job.pk, "user_id": None}]
