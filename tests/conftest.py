from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from tasks.models import Job, JobState
from tasks.services.publishing import publish_job
from tests.factories import ItemFactory, JobFactory, UserFactory, WorkerFactory
from tests.mturk_fixtures import aws_env, mturk, standin, stubbed  # noqa: F401  (MTurk fixtures)
from workforce.audit import Actor
from workforce.models import Worker

SYSTEM = Actor.system("tests")


@pytest.fixture
def actor() -> Actor:
    return SYSTEM


@pytest.fixture
def make_published_job(db: Any) -> Callable[..., Job]:
    """A published internal-pool job with ``items`` items (its Hits built by the real publish service)."""

    def make(items: int = 5, **job_fields: Any) -> Job:
        job = JobFactory(state=JobState.DRAFT, **job_fields)
        ItemFactory.create_batch(items, job=job)
        return publish_job(job=job, actor=SYSTEM)

    return make


@pytest.fixture
def make_worker(db: Any) -> Callable[..., Worker]:
    def make(**fields: Any) -> Worker:
        return WorkerFactory(**fields)

    return make


@pytest.fixture
def ops_manager(db: Any) -> Any:
    from django.contrib.auth.models import Group

    from tasks.roles import OPS_MANAGER

    user = UserFactory(username="ops", is_staff=True)
    user.groups.add(Group.objects.get(name=OPS_MANAGER))
    return user


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture(autouse=True)
def _celery_runs_inline(request: pytest.FixtureRequest) -> Any:
    """Queued work runs inline in tests, even when CELERY_BROKER_URL is set (CI), except in the tests
    marked ``broker``, which start a real worker process."""
    from config.celery import app

    if request.node.get_closest_marker("broker"):
        yield
        return
    before = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Any:
    """Rate-limit counters live in the cache; ids and IPs repeat between tests, so each test starts clean."""
    from django.core.cache import cache

    cache.clear()
    yield
