"""Fixtures for the web, API, admin and command tests of the ``tasks`` app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from rest_framework.test import APIClient

from tasks.roles import FINANCE, REVIEWER
from tests.factories import UserFactory
from workforce.models import Worker


@pytest.fixture
def worker(make_worker: Callable[..., Worker]) -> Worker:
    return make_worker()


@pytest.fixture
def worker_client(worker: Worker) -> Client:
    client = Client()
    client.force_login(worker.user)
    return client


@pytest.fixture
def login_client() -> Callable[[Any], Client]:
    def make(user: Any) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def api(ops_manager: Any) -> APIClient:
    """The REST API as an ops manager (token-less: forced authentication)."""
    client = APIClient()
    client.force_authenticate(ops_manager)
    return client


@pytest.fixture
def superuser(db: Any) -> Any:
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def reviewer(db: Any) -> Any:
    user = UserFactory(username="reviewer", is_staff=True)
    user.groups.add(Group.objects.get(name=REVIEWER))
    return user


@pytest.fixture
def finance_client(db: Any, login_client: Callable[[Any], Client]) -> Client:
    """Logged in as a member of the finance role."""
    user = UserFactory(username="finance", is_staff=True)
    user.groups.add(Group.objects.get(name=FINANCE))
    return login_client(user)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Any:
    """Job progress is cached briefly; ids repeat between tests on SQLite, so start each test clean."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def ops_client(ops_manager: Any, login_client: Callable[[Any], Client]) -> Client:
    """A client logged in as an ops manager (staff in the "Ops managers" group)."""
    return login_client(ops_manager)


@pytest.fixture(params=["superuser", "ops_manager"])
def staff_client(request: pytest.FixtureRequest, login_client: Callable[[Any], Client]) -> Client:
    """Run the test once as a superuser and once as an ops manager."""
    return login_client(request.getfixturevalue(request.param))
