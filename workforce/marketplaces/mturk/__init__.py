"""Amazon Mechanical Turk connector (boto3 ``mturk``, API 2017-01-17).

``config``: settings; ``client``: the boto3 client, rate limit and error mapping; ``connector``: the
``Marketplace`` implementation; ``requirements``: QualificationRequirements; ``documents``: question and
answer XML, SQS notifications; ``checks``: the start-up check. Fees are in ``workforce.marketplaces.mturk_fees``.

Names are exported lazily, so importing ``checks`` or ``config`` at start-up does not load boto3.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workforce.marketplaces.mturk.client import AlreadyDone, MTurkCaller, build_client
    from workforce.marketplaces.mturk.config import MTurkSettings
    from workforce.marketplaces.mturk.connector import Balance, MTurkMarketplace, RemoteHit, request_token

_EXPORTS = {
    "AlreadyDone": "client",
    "MTurkCaller": "client",
    "build_client": "client",
    "MTurkSettings": "config",
    "Balance": "connector",
    "MTurkMarketplace": "connector",
    "RemoteHit": "connector",
    "request_token": "connector",
}

__all__ = [
    "AlreadyDone",
    "Balance",
    "MTurkCaller",
    "MTurkMarketplace",
    "MTurkSettings",
    "RemoteHit",
    "build_client",
    "request_token",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(name)
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
