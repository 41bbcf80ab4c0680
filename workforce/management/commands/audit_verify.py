"""python manage.py audit_verify: walk the audit hash chain and compare its end with the chain head; exit 0 when
intact, 1 when any event is broken (each one is listed on standard error), the end was cut or a checkpoint no
longer holds, 2 on a malformed checkpoint."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from workforce.audit import (
    CHECKPOINT_FORMAT,
    chain_checkpoint,
    check_chain_end,
    check_checkpoints,
    find_broken_audit_events,
    parse_checkpoint,
    seal_all_audit_events,
)
from workforce.models import AuditEvent


def _describe(event: AuditEvent) -> str:
    return (
        f"Audit event {event.pk} ({event.action} on {event.object_type} {event.object_id}, "
        f"{event.created_at:%Y-%m-%d %H:%M:%S} UTC) does not match its hash: the trail was altered "
        "at or before this event."
    )


class Command(BaseCommand):
    help = (
        "Verify the audit trail's hash chain. Exit code 1 lists every event whose hash does not match (the "
        "first one in the error); the printed checkpoint, kept outside the database, can be checked again "
        "later with --checkpoint."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--checkpoint",
            action="append",
            default=[],
            metavar=CHECKPOINT_FORMAT,
            help="a checkpoint printed by an earlier run; the chain must still hold it (repeatable)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            checkpoints = [parse_checkpoint(text) for text in options["checkpoint"]]
        except ValueError as exc:
            raise CommandError(str(exc), returncode=2) from None
        seal_all_audit_events()  # the hot paths' pending events join the chain first
        first: AuditEvent | None = None
        broken = 0
        for event in find_broken_audit_events():  # streamed: each broken event is named as it is found
            first = first or event
            broken += 1
            self.stderr.write(_describe(event))
        problems = [_describe(first)] if first is not None else []
        if broken > 1:
            problems.append(f"{broken} audit events in all do not match their hash (each is listed above).")
        problems += [p for p in (check_chain_end(), check_checkpoints(checkpoints)) if p is not None]
        if problems:
            raise CommandError(" ".join(problems), returncode=1)
        held = f", {len(checkpoints)} checkpoint(s) held" if checkpoints else ""
        self.stdout.write(
            f"Audit trail intact: {AuditEvent.objects.count()} event(s) verified{held}. "
            f"Checkpoint (keep it outside the database): {chain_checkpoint()}"
        )
