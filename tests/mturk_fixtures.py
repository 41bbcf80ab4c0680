"""Fixtures for the MTurk tests: fake AWS credentials, the local stand-in, connectors against it or a Stubber."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.marketplaces.mturk_standin import MTurkStandIn
from workforce.marketplaces.mturk import MTurkCaller, MTurkMarketplace, MTurkSettings
from workforce.marketplaces.mturk.ratelimit import LocalBucket

SITE = "https://crowd.example.org"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def standin(aws_env: None) -> Iterator[MTurkStandIn]:
    with MTurkStandIn(balance=Decimal("10000.00")) as server:
        yield server


def standin_connector(url: str, *, max_attempts: int = 5) -> MTurkMarketplace:
    config = MTurkSettings(enabled=True, sandbox=True, endpoint_url=url, external_question_base_url=SITE)
    client = boto3.client(
        "mturk",
        endpoint_url=url,
        config=Config(region_name="us-east-1", retries={"mode": "standard", "max_attempts": max_attempts}),
    )
    return MTurkMarketplace(MTurkCaller(client, LocalBucket(rate=10000, burst=10000)), config)


@pytest.fixture
def mturk(standin: MTurkStandIn, settings: Any) -> MTurkMarketplace:
    settings.MTURK_ENABLED = True
    settings.MTURK_EXTERNAL_QUESTION_BASE_URL = SITE
    settings.MTURK_EXTRA_SUBMIT_ORIGINS = [standin.url]
    settings.MTURK_ENDPOINT_URL = standin.url
    settings.MTURK_REQUESTS_PER_SECOND = 10000
    settings.MTURK_REQUEST_BURST = 10000
    settings.MTURK_RATE_LIMIT_REDIS_URL = ""
    return standin_connector(standin.url)


@pytest.fixture
def stubbed(aws_env: None) -> MTurkMarketplace:
    """A connector over a real ``boto3.client("mturk", region_name="us-east-1")`` for botocore's Stubber."""
    client = boto3.client("mturk", region_name="us-east-1")
    config = MTurkSettings(enabled=True, sandbox=True, external_question_base_url=SITE)
    return MTurkMarketplace(MTurkCaller(client, LocalBucket(rate=10000, burst=10000)), config)
