"""The ``Marketplace`` protocol and the frozen dataclasses connectors exchange with the core.

A connector turns a ``HitSpec`` into remote work and remote work back into ``AssignmentRecord`` rows;
money it moves comes back as ``Charge`` values that the caller writes to the cost ledger in the same
transaction. Every failure is a ``MarketplaceError`` that says whether a retry can help.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable


class MarketplaceError(Exception):
    """A marketplace call failed. ``permanent`` is False when retrying the same call may succeed."""

    def __init__(self, message: str, *, permanent: bool, code: str = "") -> None:
        super().__init__(message)
        self.permanent = permanent
        self.code = code


class MarketplaceNotConfigured(MarketplaceError):
    """A marketplace is enabled in settings but lacks what it needs to run."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True, code="not_configured")


@dataclass(frozen=True)
class HitSpec:
    """One Hit as a marketplace should publish it. ``hit_id`` is our Hit's UUID: the idempotency source."""

    hit_id: str
    title: str
    description: str
    reward: Decimal
    currency: str
    max_assignments: int
    assignment_duration: timedelta
    lifetime: timedelta
    auto_approval_delay: timedelta = timedelta(days=3)
    keywords: tuple[str, ...] = ()
    question: str = ""
    qualification_requirements: tuple[Mapping[str, Any], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PublishedHit:
    """What the marketplace answered for a published ``HitSpec``. ``adopted`` is True when the remote
    HIT already existed (an earlier try that lost its response) and was taken over."""

    hit_id: str
    external_id: str
    group_id: str = ""
    expires_at: datetime | None = None
    adopted: bool = False


@dataclass(frozen=True)
class AssignmentRecord:
    """One worker's submitted work as the marketplace reports it; ``answers`` maps field name to value."""

    external_assignment_id: str
    external_hit_id: str
    external_worker_id: str
    status: str
    answers: Mapping[str, Any]
    accepted_at: datetime | None = None
    submitted_at: datetime | None = None
    auto_approval_at: datetime | None = None
    requester_annotation: str = ""


@dataclass(frozen=True)
class Charge:
    """Money a marketplace call committed or spent, to be written to the ledger by the caller."""

    kind: str
    amount: Decimal
    currency: str
    idempotency_key: str
    reference: str = ""


@runtime_checkable
class Marketplace(Protocol):
    """What every connector offers. Methods raise ``MarketplaceError``; none touch the database."""

    name: str

    def publish(self, spec: HitSpec) -> PublishedHit: ...

    def list_assignments(self, external_hit_id: str) -> Sequence[AssignmentRecord]: ...

    def approve(self, external_assignment_id: str, *, feedback: str = "") -> None: ...

    def reject(self, external_assignment_id: str, *, feedback: str) -> None: ...

    def expire(self, external_hit_id: str) -> None: ...
