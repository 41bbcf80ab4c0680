"""The boto3 ``mturk`` client and the one door every call goes through: rate limit, then error mapping.

Credentials come only from boto3's default chain (environment, shared files, instance or task role).
botocore's adaptive retry mode retries throttling, 5xx (``ServiceFault``) and connection errors with
backoff inside one call; what still fails is mapped to ``MarketplaceError``: throttling, ``ServiceFault``
and lost connections are temporary, ``RequestError`` is permanent, except the idempotency replies
(a ``UniqueRequestToken`` used before), which are raised as ``AlreadyDone`` so callers treat them as success.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError, NoCredentialsError

from workforce.marketplaces.base import MarketplaceError, MarketplaceNotConfigured
from workforce.marketplaces.mturk.config import REGION, MTurkSettings
from workforce.marketplaces.mturk.ratelimit import Bucket, shared_bucket

TRANSIENT_CODES = frozenset(
    {"ServiceFault", "Throttling", "ThrottlingException", "TooManyRequestsException", "ServiceUnavailable"}
)
IDEMPOTENT_TURK_CODES = frozenset({"AWS.MechanicalTurk.HitAlreadyExists", "AWS.MechanicalTurk.DuplicateRequest"})
_TOKEN_REPLY = re.compile(r"unique ?request ?token|already (exists|been (processed|submitted|performed))", re.I)
_HIT_ID = re.compile(r"\b([A-Z0-9]{30})\b")


class AlreadyDone(MarketplaceError):
    """MTurk says the request was performed before (same ``UniqueRequestToken``): success, not failure.
    ``hit_id`` is the HIT id named in the reply, when there is one."""

    def __init__(self, message: str, *, hit_id: str = "") -> None:
        super().__init__(message, permanent=False, code="already_done")
        self.hit_id = hit_id


def build_client(config: MTurkSettings) -> Any:
    """A boto3 ``mturk`` client for ``config`` (sandbox unless ``MTURK_SANDBOX`` is off)."""
    botocore_config = Config(
        region_name=REGION,
        retries={"mode": "adaptive", "max_attempts": config.max_attempts},
        connect_timeout=5,
        read_timeout=30,
    )
    return boto3.client("mturk", endpoint_url=config.effective_endpoint, config=botocore_config)


def check_credentials(config: MTurkSettings) -> None:
    """Raise ``MarketplaceNotConfigured`` unless boto3's default chain finds credentials."""
    session = boto3.session.Session()
    if session.get_credentials() is None:
        raise MarketplaceNotConfigured(
            "MTURK_ENABLED is on but boto3 finds no AWS credentials (set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run with an instance/task role)."
        )
    if not config.sandbox and config.endpoint_url:
        raise MarketplaceNotConfigured("MTURK_ENDPOINT_URL is for the sandbox or a local stand-in only.")


def map_client_error(exc: ClientError) -> MarketplaceError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "")) or str(exc)
    turk_code = str(exc.response.get("TurkErrorCode") or error.get("TurkErrorCode") or "")
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if turk_code in IDEMPOTENT_TURK_CODES or (code == "RequestError" and _TOKEN_REPLY.search(message)):
        found = _HIT_ID.search(message)
        return AlreadyDone(message, hit_id=found.group(1) if found else "")
    if code in TRANSIENT_CODES or status >= 500 or status == 429:
        return MarketplaceError(f"MTurk {code or status}: {message}", permanent=False, code=code or str(status))
    return MarketplaceError(f"MTurk {code or status}: {message}", permanent=True, code=turk_code or code)


class MTurkCaller:
    """Calls client operations through the shared token bucket, mapping every failure."""

    def __init__(self, client: Any, bucket: Bucket) -> None:
        self.client = client
        self.bucket = bucket

    @classmethod
    def from_settings(cls, config: MTurkSettings) -> MTurkCaller:
        bucket = shared_bucket(redis_url=config.redis_url, rate=config.requests_per_second, burst=config.burst)
        return cls(build_client(config), bucket)

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        method: Callable[..., dict[str, Any]] = getattr(self.client, operation)
        self.bucket.acquire()
        try:
            return method(**params)
        except ClientError as exc:
            raise map_client_error(exc) from exc
        except NoCredentialsError as exc:
            raise MarketplaceNotConfigured(f"MTurk: {exc}") from exc
        except (ConnectionError, HTTPClientError) as exc:
            raise MarketplaceError(f"MTurk unreachable: {exc}", permanent=False, code="connection") from exc
        except BotoCoreError as exc:
            raise MarketplaceError(f"MTurk request refused by botocore: {exc}", permanent=True) from exc

    def pages(self, operation: str, key: str, **params: Any) -> Iterator[dict[str, Any]]:
        """Every item of a paginated list operation (``NextToken`` followed to the end)."""
        token: str | None = None
        while True:
            page = self.call(operation, **params, **({"NextToken": token} if token else {}), MaxResults=100)
            yield from page.get(key, [])
            token = page.get("NextToken")
            if not token:
                return
