from __future__ import annotations

from decimal import Decimal

import pytest

from tasks.models import Job, TaskKind
from tasks.services.errors import ServiceError
from tasks.services.jobs import configure_job, create_job
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_create_job_validates_and_audits(actor):
    job = create_job(name="Cats", task_kind=TaskKind.IMAGE_CLASSIFICATION, labels=["cat", " dog "], actor=actor)
    assert job.labels == ["cat", "dog"]
    assert AuditEvent.objects.get(action="job.created").after["labels"] == ["cat", "dog"]
    with pytest.raises(ServiceError, match="two distinct"):
        create_job(name="x", task_kind=TaskKind.IMAGE_CLASSIFICATION, labels=["a", "a"], actor=actor)
    with pytest.raises(ServiceError, match="task kind"):
        create_job(name="x", task_kind="video", labels=["a", "b"], actor=actor)
    with pytest.raises(ServiceError, match="redundancy"):
        create_job(name="x", task_kind=TaskKind.TEXT_CLASSIFICATION, labels=["a", "b"], redundancy=0, actor=actor)


def test_configuring_a_job_audits_only_the_changed_fields(actor, make_published_job):
    job = make_published_job(items=1)
    job.instructions = "Be careful with sarcasm."
    job.reward = Decimal("0.07")
    configure_job(job=job, actor=actor)
    event = AuditEvent.objects.get(action="job.configured")
    assert event.before == {"instructions": "", "reward": "0.0500"}
    assert event.after == {"instructions": "Be careful with sarcasm.", "reward": "0.07"}
    assert Job.objects.get(pk=job.pk).instructions == "Be careful with sarcasm."


def test_the_label_set_of_a_published_job_cannot_change(actor, make_published_job):
    job = make_published_job(items=1)
    job.labels = ["a", "b"]
    with pytest.raises(ServiceError, match="labels cannot change"):
        configure_job(job=job, actor=actor)
    assert Job.objects.get(pk=job.pk).labels == ["pos", "neg", "neutral"]
