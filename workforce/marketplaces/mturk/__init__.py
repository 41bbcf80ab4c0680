"""Amazon Mechanical Turk connector (boto3 ``mturk``, API 2017-01-17).

``config``: settings; ``client``: the boto3 client, rate limit and error mapping; ``connector``: the
``Marketplace`` implementation; ``requirements``: QualificationRequirements; ``documents``: question and
answer XML, SQS notifications; ``checks``: the start-up check. Fees are in ``workforce.marketplaces.mturk_fees``.
"""

from workforce.marketplaces.mturk.client import AlreadyDone, MTurkCaller, build_client
from workforce.marketplaces.mturk.config import MTurkSettings
from workforce.marketplaces.mturk.connector import Balance, MTurkMarketplace, RemoteHit, request_token

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
