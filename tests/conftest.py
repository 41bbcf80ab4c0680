from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from tasks.models import Job, JobState
from tasks.services.publishing import publish_job
from tests.factories import ItemFactory, JobFactory, UserFactory, WorkerFactory
from tests.mturk_fixtures import aws_env, mturk, standin, stubbed  # noqa: F401  (MTurk fixtures)
from workforce.audit import Actor
from workforce.models import Worker

SYSTEM = Actor.system("tests")


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist each worker process gets its own Redis database for the cache (``REDIS_URL``'s
    number minus 1 for ``gw0``, minus 2 for ``gw1``...): tests clear the cache, and Redis clears a whole
    database, so a shared one let one worker wipe another's keys in the middle of a test."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not worker.startswith("gw"):
        return
    from django.conf import settings
    from django.core.cache import caches

    cache = settings.CACHES.get("default", {})
    if not str(cache.get("BACKEND", "")).endswith("RedisCache"):
        return
    parts = urlsplit(str(cache["LOCATION"]))
    base = int(parts.path.strip("/") or 0)
    db = base - 1 - int(worker[2:])
    if db < 0:
        raise pytest.UsageError(f"REDIS_URL's database {base} leaves no database for xdist worker {worker}.")
    settings.CACHES = {**settings.CACHES, "default": {**cache, "LOCATION": urlunsplit(parts._replace(path=f"/{db}"))}}
    caches.__dict__.pop("settings", None)  # the handler reads CACHES again on first use


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
