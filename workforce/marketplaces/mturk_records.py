"""MTurk's own money records (bonus payments, account balance), read through boto3's ``mturk`` client.

``MarketplaceRecords`` is the small interface reconciliation reads; ``MTurkRecords`` implements it over
any ``mturk`` client, so the same code reads the real service, a local stand-in server
(``endpoint_url``) or a botocore ``Stubber`` in tests. No Django here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from workforce.marketplaces.base import MarketplaceError

PAGE_SIZE = 100
RETRYABLE = {"ServiceFault", "Throttling", "ThrottlingException", "RequestError"}


@dataclass(frozen=True)
class BonusPayment:
    worker_id: str
    assignment_id: str
    amount: Decimal
    reason: str = ""
    granted_at: datetime | None = None


class MarketplaceRecords(Protocol):
    def list_bonus_payments(self, *, hit_id: str) -> Sequence[BonusPayment]: ...

    def get_account_balance(self) -> Decimal: ...


def _amount(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise MarketplaceError(f"MTurk sent an amount that is not a number: {value!r}", permanent=True) from None
    if not amount.is_finite():
        raise MarketplaceError(f"MTurk sent an amount that is not a number: {value!r}", permanent=True)
    return amount


class MTurkRecords:
    def __init__(self, client: Any) -> None:
        self.client = client

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response: dict[str, Any] = getattr(self.client, operation)(**params)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise MarketplaceError(str(exc), permanent=code not in RETRYABLE, code=code) from exc
        except BotoCoreError as exc:
            raise MarketplaceError(str(exc), permanent=False) from exc
        return response

    def list_bonus_payments(self, *, hit_id: str) -> list[BonusPayment]:
        """Every bonus MTurk paid on the HIT's assignments (all pages)."""
        payments: list[BonusPayment] = []
        params: dict[str, Any] = {"HITId": hit_id, "MaxResults": PAGE_SIZE}
        while True:
            page = self._call("list_bonus_payments", **params)
            for bonus in page.get("BonusPayments", []):
                payments.append(
                    BonusPayment(
                        worker_id=bonus.get("WorkerId", ""),
                        assignment_id=bonus.get("AssignmentId", ""),
                        amount=_amount(bonus.get("BonusAmount")),
                        reason=bonus.get("Reason", ""),
                        granted_at=bonus.get("GrantTime"),
                    )
                )
            token = page.get("NextToken")
            if not token:
                return payments
            params["NextToken"] = token

    def get_account_balance(self) -> Decimal:
        return _amount(self._call("get_account_balance").get("AvailableBalance"))


def mturk_records(*, endpoint_url: str | None = None, region: str = "us-east-1") -> MTurkRecords:
    """Records read from MTurk (or a stand-in at ``endpoint_url``) with the default AWS credentials."""
    import boto3

    return MTurkRecords(boto3.client("mturk", region_name=region, endpoint_url=endpoint_url))
