"""MTurk settings, read once from Django settings into a frozen value the connector is built from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SANDBOX_ENDPOINT = "https://mturk-requester-sandbox.us-east-1.amazonaws.com"
REGION = "us-east-1"
# MTurk's system qualification type ids (the Masters id differs between sandbox and production).
MASTERS_PRODUCTION = "2F1QJWKUDD8XADTFD2Q0G6UTO95ALH"
MASTERS_SANDBOX = "2ARFPLSP75KLA8M8DH1HTEQVJT3SY6"
PERCENT_APPROVED = "000000000000000000L0"
NUMBER_HITS_APPROVED = "00000000000000000040"
LOCALE = "00000000000000000071"
ADULT = "00000000000000000060"
# Worker sites allowed to frame the ExternalQuestion page, and the hosts a turkSubmitTo may name.
WORKER_SITES = ("https://worker.mturk.com", "https://workersandbox.mturk.com")
SUBMIT_HOSTS = frozenset({"www.mturk.com", "workersandbox.mturk.com", "worker.mturk.com"})


@dataclass(frozen=True)
class MTurkSettings:
    enabled: bool = False
    sandbox: bool = True
    endpoint_url: str = ""
    requests_per_second: float = 5.0
    burst: int = 10
    max_attempts: int = 5
    redis_url: str = ""
    external_question_base_url: str = ""
    frame_height: int = 800

    @property
    def effective_endpoint(self) -> str | None:
        if self.endpoint_url:
            return self.endpoint_url
        return SANDBOX_ENDPOINT if self.sandbox else None

    @property
    def masters_id(self) -> str:
        return MASTERS_SANDBOX if self.sandbox else MASTERS_PRODUCTION

    @classmethod
    def from_django(cls) -> MTurkSettings:
        from django.conf import settings

        def get(name: str, default: Any) -> Any:
            return getattr(settings, name, default)

        return cls(
            enabled=bool(get("MTURK_ENABLED", False)),
            sandbox=bool(get("MTURK_SANDBOX", True)),
            endpoint_url=str(get("MTURK_ENDPOINT_URL", "") or ""),
            requests_per_second=float(get("MTURK_REQUESTS_PER_SECOND", 5.0)),
            burst=int(get("MTURK_REQUEST_BURST", 10)),
            max_attempts=int(get("MTURK_MAX_ATTEMPTS", 5)),
            redis_url=str(get("MTURK_RATE_LIMIT_REDIS_URL", "") or ""),
            external_question_base_url=str(get("MTURK_EXTERNAL_QUESTION_BASE_URL", "") or ""),
            frame_height=int(get("MTURK_FRAME_HEIGHT", 800)),
        )
