"""Ground Truth's settings, read once from Django settings, and the check that fails loudly when the
connector is enabled without them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import checks

from workforce.marketplaces.groundtruth.lambdas import REGION_ACCOUNTS

ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class GroundTruthSettings:
    enabled: bool
    role_arn: str
    bucket: str
    prefix: str
    region: str

    @classmethod
    def from_django(cls) -> GroundTruthSettings:
        return cls(
            enabled=bool(getattr(settings, "GROUNDTRUTH_ENABLED", False)),
            role_arn=getattr(settings, "GROUNDTRUTH_ROLE_ARN", "") or "",
            bucket=getattr(settings, "GROUNDTRUTH_S3_BUCKET", "") or "",
            prefix=(getattr(settings, "GROUNDTRUTH_S3_PREFIX", "") or "").strip("/"),
            region=getattr(settings, "GROUNDTRUTH_REGION", "") or "",
        )

    def problems(self) -> list[str]:
        found: list[str] = []
        if not ROLE_ARN.match(self.role_arn):
            found.append("GROUNDTRUTH_ROLE_ARN must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
        if not BUCKET.match(self.bucket):
            found.append("GROUNDTRUTH_S3_BUCKET must name an S3 bucket")
        if self.region not in REGION_ACCOUNTS:
            found.append(f"GROUNDTRUTH_REGION must be a Ground Truth region ({', '.join(sorted(REGION_ACCOUNTS))})")
        return found


def check_groundtruth_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """System check: enabled but unconfigured is an error that stops ``manage.py`` and the server."""
    config = GroundTruthSettings.from_django()
    if not config.enabled:
        return []
    return [
        checks.Error(
            f"Ground Truth is enabled but {problem}.", id="workforce.E101", hint="Set it or GROUNDTRUTH_ENABLED=0."
        )
        for problem in config.problems()
    ]
