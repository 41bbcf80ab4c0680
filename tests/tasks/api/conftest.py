from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from tasks.roles import FINANCE
from tests.factories import UserFactory
from tests.tasks.exports.conftest import labeled_job  # noqa: F401  (the same labeled job fixture)


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def finance(db: Any) -> Any:
    user = UserFactory(username="finance", is_staff=True)
    user.groups.add(Group.objects.get(name=FINANCE))
    return user


@pytest.fixture
def as_user() -> Any:
    def make(user: Any) -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def api(ops_manager: Any, as_user: Any) -> APIClient:
    return as_user(ops_manager)
