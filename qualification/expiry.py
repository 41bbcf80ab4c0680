"""Closing qualification attempts whose time ran out: one attempt (a late submit), a worker's overdue
attempts (on their next start) and the periodic sweep over every overdue attempt. The sweep is set-based:
one locking read of the ids, one conditional update and one batch of audit events, whatever the count."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from qualification.models import Attempt, AttemptState, QualificationTest
from workforce.audit import Actor, QueuedEvent, record_audit_events
from workforce.models import Worker

# A submit that arrives this long after the deadline still counts (the page's own timer submits at 0).
SUBMIT_GRACE = timedelta(seconds=5)
ATTEMPT_OBJECT = "qualification_attempt"
EXPIRED_ACTION = "qualification.attempt_expired"


def _expired_event(attempt_id: int, actor: Actor) -> QueuedEvent:
    return QueuedEvent(
        actor=actor,
        action=EXPIRED_ACTION,
        object_type=ATTEMPT_OBJECT,
        object_id=attempt_id,
        before={"state": AttemptState.OPEN},
        after={"state": AttemptState.EXPIRED, "score": 0.0},
    )


def expire_attempt(attempt: Attempt, actor: Actor) -> bool:
    """Close one attempt as expired if it is still open (inside the caller's transaction); True if it was."""
    closed = Attempt.objects.filter(pk=attempt.pk, state=AttemptState.OPEN).update(
        state=AttemptState.EXPIRED, score=0.0, passed=False
    )
    if closed:
        record_audit_events([_expired_event(attempt.pk, actor)])
    return bool(closed)


def _expire_open(attempts: QuerySet[Attempt], actor: Actor) -> int:
    """Close the open attempts of ``attempts`` as expired, one audit event each (in the caller's transaction).

    The ids are read with their rows locked (rows another sweep holds are skipped, it closes them), so the
    conditional update closes exactly those ids and each gets its event."""
    ids: Sequence[int] = list(
        attempts.filter(state=AttemptState.OPEN)
        .select_for_update(skip_locked=True)
        .order_by("-started_at", "pk")
        .values_list("pk", flat=True)
    )
    if not ids:
        return 0
    closed = Attempt.objects.filter(pk__in=ids, state=AttemptState.OPEN).update(
        state=AttemptState.EXPIRED, score=0.0, passed=False
    )
    record_audit_events([_expired_event(pk, actor) for pk in ids])
    return closed


def expire_overdue_for_worker(*, worker: Worker, test: QualificationTest, now: datetime) -> int:
    """Close ``worker``'s overdue open attempts at ``test`` (before they start another); returns how many."""
    overdue = Attempt.objects.filter(worker=worker, test=test, deadline__lt=now - SUBMIT_GRACE)
    with transaction.atomic():
        return _expire_open(overdue, Actor.from_worker(worker))


def expire_overdue_attempts(*, now: datetime | None = None) -> int:
    """Close every open attempt past its deadline as expired (a periodic sweep); returns how many."""
    now = now or timezone.now()
    with transaction.atomic():
        return _expire_open(
            Attempt.objects.filter(deadline__lt=now - SUBMIT_GRACE), Actor.system("expire_overdue_attempts")
        )
