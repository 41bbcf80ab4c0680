"""MTurk's start-up check and the shared rate limit."""

from __future__ import annotations

import uuid

import pytest
import redis
from django.core.exceptions import ImproperlyConfigured

from workforce.marketplaces.mturk import MTurkSettings
from workforce.marketplaces.mturk.checks import check_mturk, fail_if_misconfigured, mturk_problems
from workforce.marketplaces.mturk.client import build_client
from workforce.marketplaces.mturk.config import SANDBOX_ENDPOINT
from workforce.marketplaces.mturk.ratelimit import RedisBucket

REDIS_URL = "redis://127.0.0.1:6379/15"


def test_disabled_mturk_needs_nothing() -> None:
    assert mturk_problems(MTurkSettings(enabled=False)) == []


def test_enabled_without_credentials_or_site_fails_loudly(monkeypatch: pytest.MonkeyPatch, settings, tmp_path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    settings.MTURK_ENABLED = True
    settings.MTURK_EXTERNAL_QUESTION_BASE_URL = "http://insecure.example.org"
    problems = mturk_problems(MTurkSettings.from_django())
    assert any("no AWS credentials" in p for p in problems)
    assert any("MTURK_EXTERNAL_QUESTION_BASE_URL" in p for p in problems)
    assert [m.id for m in check_mturk()] == ["crowdops.E501", "crowdops.E501"]
    with pytest.raises(ImproperlyConfigured, match="MTurk is enabled but not configured"):
        fail_if_misconfigured()


def test_enabled_and_configured_passes(aws_env: None, settings) -> None:
    settings.MTURK_ENABLED = True
    settings.MTURK_EXTERNAL_QUESTION_BASE_URL = "https://crowd.example.org"
    assert check_mturk() == []
    fail_if_misconfigured()


def test_the_sandbox_is_the_default_endpoint_and_retries_are_adaptive(aws_env: None) -> None:
    client = build_client(MTurkSettings(enabled=True))
    assert client.meta.endpoint_url == SANDBOX_ENDPOINT
    assert client.meta.config.retries["mode"] == "adaptive"
    production = build_client(MTurkSettings(enabled=True, sandbox=False))
    assert production.meta.endpoint_url == "https://mturk-requester.us-east-1.amazonaws.com"


def test_the_redis_bucket_is_shared_between_processes() -> None:
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    key = f"test:mturk:{uuid.uuid4()}"
    one = RedisBucket(url=REDIS_URL, rate=0.001, burst=3, key=key)
    two = RedisBucket(url=REDIS_URL, rate=0.001, burst=3, key=key)
    taken = [one.try_take(), two.try_take(), one.try_take()]
    assert taken == [0.0, 0.0, 0.0]
    assert two.try_take() > 0 and one.try_take() > 0  # the burst is spent for both
