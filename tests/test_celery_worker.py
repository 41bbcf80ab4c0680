"""A real Celery worker process, fed through a real broker, does the work a service queues."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from tasks.models import Hit, HitState, Job, JobState
from tasks.services.publishing import request_publish
from tests.factories import ItemFactory, JobFactory
from workforce.audit import Actor

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL, reason="no broker configured: set CELERY_BROKER_URL=redis://..."
    ),
    pytest.mark.skipif(
        not settings.IS_POSTGRES,
        reason="the worker process needs a database it can share with the test: set DATABASE_URL=postgres://...",
    ),
]


def _test_database_url() -> str:
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def celery_worker_process():
    env = {**os.environ, "DATABASE_URL": _test_database_url(), "CELERY_BROKER_URL": settings.CELERY_BROKER_URL}
    env.pop("PYTEST_CURRENT_TEST", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"test-{os.getpid()}@%h",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_publishes_the_job_the_admin_queued(celery_worker_process):
    assert settings.CELERY_TASK_ALWAYS_EAGER is False
    job = JobFactory()
    ItemFactory.create_batch(7, job=job)
    request_publish(job=job, actor=Actor.system("tests"))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if Job.objects.get(pk=job.pk).state == JobState.PUBLISHED:
            break
        assert celery_worker_process.poll() is None, celery_worker_process.stdout.read()
        time.sleep(0.5)
    job.refresh_from_db()
    assert job.state == JobState.PUBLISHED, "the worker did not publish the job in 90 s"
    assert Hit.objects.filter(job=job, state=HitState.OPEN).count() == 7
