"""Qualification writes on many rows at once, set-based: a fixed number of queries however many rows.

Each does what its one-row service in ``qualification.services`` does, with the same rows and audit events.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from qualification.models import Grant
from qualification.services import grant_revoked_event
from workforce.audit import Actor, record_audit_events


def revoke_grants(
    *, grants: QuerySet[Grant] | Iterable[Grant], actor: Actor, reason: str, now: datetime | None = None
) -> list[Grant]:
    """``revoke_grant`` for many grants: the live ones among ``grants`` are locked (in id order), revoked by one
    update and audited in one batch. Like ``revoke_grant``, revoking changes only the grant row: requirements
    and the worker's test list read live grants, so there is nothing else to release or refresh. Grants
    already revoked are left as they are (someone revoked them first). Returns the grants this call revoked,
    in id order, as stored."""
    now = now or timezone.now()
    chosen = grants.values("pk") if isinstance(grants, QuerySet) else [g.pk for g in grants]
    with transaction.atomic():
        locked = list(Grant.objects.select_for_update().filter(pk__in=chosen, revoked_at__isnull=True).order_by("pk"))
        if not locked:
            return []
        Grant.objects.filter(pk__in=[g.pk for g in locked]).update(revoked_at=now, revoked_reason=reason[:255])
        record_audit_events([grant_revoked_event(g, actor=actor, reason=reason, now=now) for g in locked])
    for grant in locked:
        grant.revoked_at, grant.revoked_reason = now, reason[:255]
    return locked
