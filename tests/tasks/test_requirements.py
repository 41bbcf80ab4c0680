"""Jobs offered only to workers who meet their requirements, re-checked at submit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from qualification.models import Grant, QualificationTest
from qualification.services import create_test
from qualification.specs import QuestionSpec
from tasks.models import Answer, Job
from tasks.services.collection import submit_assignment
from tasks.services.errors import NotQualified, SubmissionRefused
from tasks.services.pool import assign_next_hit
from workforce.audit import Actor
from workforce.models import Worker


@pytest.fixture
def qual_test(db: Any) -> QualificationTest:
    return create_test(
        actor=Actor.system("tests"),
        name="Tone basics",
        questions=[QuestionSpec(identifier="q1", prompt="Tone?", payload={"text": "great"}, accepted=("pos",))],
        labels=["pos", "neg"],
        pass_score=80,
        time_limit=timedelta(minutes=5),
        retry_delay=timedelta(hours=1),
        max_attempts=2,
    )


def _grant(worker: Worker, test: QualificationTest, score: float) -> Grant:
    return Grant.objects.create(
        worker=worker, test=test, family=test, version=test.version, score=score, granted_at=timezone.now()
    )


def test_a_worker_without_the_qualification_is_told_what_is_missing(
    make_published_job: Callable[..., Job], make_worker: Callable[..., Worker], qual_test: QualificationTest
) -> None:
    job = make_published_job(items=2, requirements=[{"kind": "test", "test": qual_test.pk, "min_score": 90}])
    worker = make_worker()
    with pytest.raises(NotQualified, match="Tone basics"):
        assign_next_hit(job=job, worker=worker)
    _grant(worker, qual_test, 85)
    with pytest.raises(NotQualified, match="at least 90"):
        assign_next_hit(job=job, worker=worker)
    Grant.objects.filter(worker=worker).update(score=95)
    assert assign_next_hit(job=job, worker=worker).job_id == job.pk


def test_the_work_list_shows_unmet_requirements_instead_of_a_start_button(
    make_published_job: Callable[..., Job], make_worker: Callable[..., Worker], qual_test: QualificationTest
) -> None:
    job = make_published_job(items=1, requirements=[{"kind": "test", "test": qual_test.pk, "min_score": 80}])
    worker = make_worker()
    client = Client()
    client.force_login(worker.user)
    page = client.get("/work/").content.decode()
    assert "You need to pass the qualification test “Tone basics”." in page
    assert f"/work/jobs/{job.pk}/start/" not in page
    _grant(worker, qual_test, 100)
    assert f"/work/jobs/{job.pk}/start/" in client.get("/work/").content.decode()


def test_a_revoked_qualification_is_caught_at_submit(
    make_published_job: Callable[..., Job], make_worker: Callable[..., Worker], qual_test: QualificationTest
) -> None:
    job = make_published_job(items=1, requirements=[{"kind": "test", "test": qual_test.pk, "min_score": 80}])
    worker = make_worker()
    _grant(worker, qual_test, 100)
    lease = assign_next_hit(job=job, worker=worker)
    Grant.objects.filter(worker=worker).update(revoked_at=timezone.now())
    with pytest.raises(SubmissionRefused, match="no longer meet"):
        submit_assignment(assignment=lease, worker=worker, answers={lease.hit.items.get().pk: "pos"})
    assert not Answer.objects.exists()


def test_approved_work_and_not_blocked_requirements(
    make_published_job: Callable[..., Job], make_worker: Callable[..., Worker]
) -> None:
    job = make_published_job(
        items=1, requirements=[{"kind": "not_blocked"}, {"kind": "approved_assignments", "min": 1}]
    )
    with pytest.raises(NotQualified, match="at least 1 approved task"):
        assign_next_hit(job=job, worker=make_worker())
