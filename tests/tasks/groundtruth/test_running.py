"""Ground Truth settings, costs, the follower's choices, and the admin's Stop action."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client

from tasks.models import CostEntry, CostKind, Job, LabelingJob, TaskKind
from tasks.services.errors import ServiceError
from tasks.services.groundtruth.costs import Pricing, book_groundtruth_costs, object_price
from tasks.services.groundtruth.importing import import_groundtruth_output
from tasks.services.groundtruth.running import (
    configure_labeling_job,
    follow_labeling_jobs,
    max_labeled_objects,
    publish_labeling_job,
)
from tasks.tasks import follow_labeling_jobs_task
from tests.factories import UserFactory
from tests.tasks.groundtruth.data import BBOX_MANIFEST, labeled_objects
from workforce.audit import Actor
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")
TIERS = [(2, "0.08"), (4, "0.04"), (None, "0.02")]


def test_enabled_but_unconfigured_stops_manage_py(settings: Any) -> None:
    settings.GROUNDTRUTH_ENABLED = True
    settings.GROUNDTRUTH_ROLE_ARN = ""
    with pytest.raises(SystemCheckError, match="GROUNDTRUTH_ROLE_ARN"):
        call_command("check")
    settings.GROUNDTRUTH_ROLE_ARN = "arn:aws:iam::123456789012:role/GT"
    settings.GROUNDTRUTH_S3_BUCKET = "crowdops-gt"
    settings.GROUNDTRUTH_REGION = "eu-west-1"
    call_command("check")


def test_object_prices_follow_the_tier_table() -> None:
    assert [object_price(n, TIERS) for n in range(1, 7)] == [
        Decimal(p) for p in ["0.08", "0.08", "0.04", "0.04", "0.02", "0.02"]
    ]


def test_object_charges_are_booked_once_per_labeled_object_at_their_tier(settings: Any) -> None:
    settings.GROUNDTRUTH_OBJECT_PRICE_TIERS = TIERS
    result = import_groundtruth_output(
        manifest_text=BBOX_MANIFEST.read_text(), responses=[], actor=ACTOR, new_job_name="boxes"
    )
    job = Job.objects.get(pk=result.job)
    labeling_job = configure_labeling_job(job=job, actor=ACTOR, task_type="BoundingBox")
    pricing = Pricing.of(labeling_job)
    assert book_groundtruth_costs(job=job, pricing=pricing, objects=labeled_objects(job)) == 100
    assert book_groundtruth_costs(job=job, pricing=pricing, objects=labeled_objects(job)) == 0
    amounts = sorted(CostEntry.objects.filter(job=job, kind=CostKind.GT_OBJECT_CHARGE).values_list("amount", flat=True))
    assert sum(amounts, Decimal(0)) == Decimal("0.08") * 2 + Decimal("0.04") * 2 + Decimal("0.02") * 96


def test_the_budget_sets_the_stopping_condition(settings: Any) -> None:
    settings.GROUNDTRUTH_OBJECT_PRICE_TIERS = TIERS
    job = Job.objects.create(name="j", task_kind=TaskKind.IMAGE_CLASSIFICATION, labels=["a", "b"])
    labeling_job = configure_labeling_job(job=job, actor=ACTOR, workforce="public", task_price=Decimal("0.012"))
    # 0.08 per object + 3 workers x 0.012 = 0.116 per object
    assert max_labeled_objects(labeling_job, Decimal("11.60")) == 100
    assert max_labeled_objects(labeling_job, None) is None


def test_configuration_is_checked_and_fixed_once_published() -> None:
    job = Job.objects.create(name="My birds!", task_kind=TaskKind.IMAGE_CLASSIFICATION, labels=["a", "b"])
    with pytest.raises(ServiceError, match="Invalid Ground Truth settings"):
        configure_labeling_job(job=job, actor=ACTOR, workers_per_object=12)
    labeling_job = configure_labeling_job(job=job, actor=ACTOR, task_price=Decimal("0.5"))
    assert labeling_job.name == f"crowdops-{job.pk}-my-birds" and labeling_job.task_type == "ImageMultiClass"
    assert labeling_job.task_price == 0  # private workteams have no per-task price
    LabelingJob.objects.filter(pk=labeling_job.pk).update(arn="arn:x")
    with pytest.raises(ServiceError, match="already running"):
        configure_labeling_job(job=job, actor=ACTOR, workers_per_object=2)


def test_publishing_items_without_s3_images_is_refused_before_any_call() -> None:
    job = Job.objects.create(name="j", task_kind=TaskKind.IMAGE_CLASSIFICATION, labels=["a", "b"])
    job.items.create(external_id="1", payload={"image_url": "https://x/1.jpg"}, payload_hash="h")
    configure_labeling_job(job=job, actor=ACTOR)
    with pytest.raises(ServiceError, match="s3://"):
        publish_labeling_job(job=job, actor=ACTOR, connector=object())  # type: ignore[arg-type]


def test_the_follower_skips_failed_and_finished_jobs_and_is_off_when_disabled(settings: Any) -> None:
    job = Job.objects.create(name="j", task_kind=TaskKind.IMAGE_CLASSIFICATION, labels=["a", "b"])
    labeling_job = configure_labeling_job(job=job, actor=ACTOR)
    LabelingJob.objects.filter(pk=labeling_job.pk).update(arn="arn:x", status="Failed")
    assert follow_labeling_jobs(actor=ACTOR, connector=object()) == 0  # type: ignore[arg-type]
    settings.GROUNDTRUTH_ENABLED = False
    assert follow_labeling_jobs_task.delay().get() == 0


def test_the_admin_stop_action_reports_a_job_that_was_never_published() -> None:
    job = Job.objects.create(name="j", task_kind=TaskKind.IMAGE_CLASSIFICATION, labels=["a", "b"])
    labeling_job = configure_labeling_job(job=job, actor=ACTOR)
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    response = client.post(
        "/admin/tasks/labelingjob/",
        {"action": "stop_selected", "_selected_action": [labeling_job.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "was never published" in response.content.decode()
    assert not AuditEvent.objects.filter(action="groundtruth.stop_requested").exists()
    assert client.get(f"/admin/tasks/labelingjob/{labeling_job.pk}/change/").status_code == 200


def test_the_jobs_admin_page_shows_its_labeling_jobs_status_and_failure() -> None:
    job = Job.objects.create(name="j", task_kind=TaskKind.IMAGE_CLASSIFICATION, labels=["a", "b"])
    labeling_job = configure_labeling_job(job=job, actor=ACTOR)
    LabelingJob.objects.filter(pk=labeling_job.pk).update(status="Failed", failure_reason="Role cannot read the bucket")
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    page = client.get(f"/admin/tasks/job/{job.pk}/change/").content.decode()
    assert labeling_job.name in page and "Role cannot read the bucket" in page


class _FailingConnector:
    def describe(self, name: str) -> None:
        from workforce.marketplaces.base import MarketplaceError

        raise MarketplaceError("Throttled", permanent=False)


def test_a_failing_describe_is_reported_without_holding_up_other_jobs() -> None:
    from workforce.marketplaces.base import MarketplaceError

    job = Job.objects.create(name="j", task_kind=TaskKind.IMAGE_CLASSIFICATION, labels=["a", "b"])
    labeling_job = configure_labeling_job(job=job, actor=ACTOR)
    LabelingJob.objects.filter(pk=labeling_job.pk).update(arn="arn:x", status="InProgress")
    with pytest.raises(MarketplaceError, match="failed") as caught:
        follow_labeling_jobs(actor=ACTOR, connector=_FailingConnector())  # type: ignore[arg-type]
    assert caught.value.permanent is False


def test_the_publish_task_refuses_a_job_without_ground_truth_settings() -> None:
    from tasks.tasks import publish_labeling_job_task

    job = Job.objects.create(name="j", task_kind=TaskKind.IMAGE_CLASSIFICATION, labels=["a", "b"])
    with pytest.raises(ServiceError, match="no Ground Truth settings"):
        publish_labeling_job_task.delay(job_id=job.pk)
