"""Reviewing submitted assignments: the minimal version.

This module holds only what the quality policies need: ``reject_assignment`` with a conditional
``SUBMITTED -> REJECTED`` transition and its audit event. It books no ledger rows and calls no
marketplace; the fuller review service (approve, reject, bonus, with ledger bookings and connector
calls) is written on another branch and replaces this file on merge, keeping this signature.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from tasks.models import Assignment, AssignmentState
from tasks.services.errors import InvalidTransition
from workforce.audit import Actor, record_audit_event


def reject_assignment(*, assignment: Assignment, actor: Actor, feedback: str) -> Assignment:
    """Reject a submitted assignment with ``feedback`` for the worker; refuse any other state."""
    now = timezone.now()
    with transaction.atomic():
        changed = Assignment.objects.filter(pk=assignment.pk, state=AssignmentState.SUBMITTED).update(
            state=AssignmentState.REJECTED, reviewed_at=now
        )
        if not changed:
            current = Assignment.objects.filter(pk=assignment.pk).values_list("state", flat=True).first()
            raise InvalidTransition(f"Only a submitted assignment can be rejected; this one is {current or 'gone'}.")
        record_audit_event(
            actor=actor,
            action="assignment.rejected",
            object_type="assignment",
            object_id=assignment.pk,
            before={"state": AssignmentState.SUBMITTED},
            after={"state": AssignmentState.REJECTED, "reviewed_at": now.isoformat(), "feedback": feedback},
            reason=feedback,
        )
    assignment.state = AssignmentState.REJECTED
    assignment.reviewed_at = now
    return assignment
