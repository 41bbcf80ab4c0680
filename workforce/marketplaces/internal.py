"""The internal worker pool as a connector. Its work lives in our own tables, so publishing is local:
the Hit's own UUID is its external id, and nothing is charged at publish time."""

from __future__ import annotations

from collections.abc import Sequence

from workforce.marketplaces.base import AssignmentRecord, HitSpec, PublishedHit


class InternalPool:
    name = "internal"

    def publish(self, spec: HitSpec) -> PublishedHit:
        return PublishedHit(hit_id=spec.hit_id, external_id=spec.hit_id)

    def list_assignments(self, external_hit_id: str) -> Sequence[AssignmentRecord]:
        return ()  # internal submits arrive through tasks.services.collection directly

    def approve(self, external_assignment_id: str, *, feedback: str = "") -> None:
        return None

    def reject(self, external_assignment_id: str, *, feedback: str) -> None:
        return None

    def expire(self, external_hit_id: str) -> None:
        return None
