"""A change to a job's Ground Truth settings is audited like a job's edit: the settings that changed, each with
its value before and after (a new labeling job's settings are all "after"); a save that changes nothing writes
no event."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from tasks.models import Job, JobState, LabelingJob, TaskKind
from tasks.services.groundtruth.running import configure_labeling_job
from tests.factories import ItemFactory, JobFactory
from workforce.audit import Actor, verify_audit_chain
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")
TEAM = "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/team"


def _events(job: Job) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="groundtruth.configured", object_id=str(job.pk)).order_by("id"))


def _job() -> Job:
    return Job.objects.create(name="birds", task_kind=TaskKind.IMAGE_CLASSIFICATION, labels=["a", "b"])


def test_new_settings_are_recorded_as_after_with_the_job_moving_to_ground_truth() -> None:
    job = _job()
    labeling_job = configure_labeling_job(job=job, actor=ACTOR, workforce="public", task_price=Decimal("0.012"))
    [event] = _events(job)
    assert event.before == {"marketplace": "internal"}
    assert event.after["marketplace"] == "groundtruth" and event.after["labeling_job"] == labeling_job.name
    assert event.after["workforce"] == "public" and event.after["task_price"] == "0.01200"
    assert event.after["task_type"] == "ImageMultiClass" and event.after["workers_per_object"] == 3


def test_a_change_records_each_changed_setting_before_and_after_and_nothing_else() -> None:
    job = _job()
    configure_labeling_job(job=job, actor=ACTOR, workteam_arn=TEAM, workers_per_object=3)
    configure_labeling_job(job=job, actor=ACTOR, workteam_arn=TEAM, workers_per_object=5, max_concurrent_tasks=200)
    event = _events(job)[-1]
    assert event.before == {"workers_per_object": 3, "max_concurrent_tasks": 1000}
    assert event.after == {
        "workers_per_object": 5,
        "max_concurrent_tasks": 200,
        "labeling_job": LabelingJob.objects.get(job=job).name,
    }
    assert verify_audit_chain() is None


def test_a_price_the_workforce_clears_is_recorded_as_changed_too() -> None:
    job = _job()
    configure_labeling_job(job=job, actor=ACTOR, workforce="public", task_price=Decimal("0.012"))
    configure_labeling_job(job=job, actor=ACTOR, workforce="private", workteam_arn=TEAM)
    event = _events(job)[-1]
    assert event.before == {"workforce": "public", "workteam_arn": "", "task_price": "0.01200"}
    assert event.after["workforce"] == "private" and event.after["task_price"] == "0.00000"


def test_a_save_that_changes_nothing_writes_no_event() -> None:
    job = _job()
    configure_labeling_job(job=job, actor=ACTOR, workforce="public", task_price=Decimal("0.012"))
    configure_labeling_job(job=job, actor=ACTOR, workforce="public", task_price=Decimal("0.01200"))
    assert len(_events(job)) == 1


def test_the_admins_change_form_records_what_it_changed(ops_manager: Any) -> None:
    job = JobFactory(state=JobState.DRAFT, labels=["pos", "neg"])
    ItemFactory(job=job)
    form = {
        "task_type": "custom",
        "workforce": "private",
        "workteam_arn": TEAM,
        "task_price": "0",
        "workers_per_object": 3,
        "task_time_limit_seconds": 300,
        "task_availability_seconds": 864000,
        "max_concurrent_tasks": 1000,
        "ui_template": "<crowd-form></crowd-form>",
        "pre_annotation_lambda_arn": "",
        "consolidation_lambda_arn": "",
    }
    client = Client()
    client.force_login(ops_manager)
    assert client.post("/admin/tasks/labelingjob/add/", {"job": job.pk, **form}).status_code == 302
    labeling_job = LabelingJob.objects.get(job=job)
    changed = {**form, "workers_per_object": 7, "task_time_limit_seconds": 600}
    response = client.post(f"/admin/tasks/labelingjob/{labeling_job.pk}/change/", changed)
    assert response.status_code == 302, response.content.decode()[:2000]
    event = _events(job)[-1]
    assert event.actor_id == str(ops_manager.pk)
    assert event.before == {"workers_per_object": 3, "task_time_limit_seconds": 300}
    assert event.after == {"workers_per_object": 7, "task_time_limit_seconds": 600, "labeling_job": labeling_job.name}
