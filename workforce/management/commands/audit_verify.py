"""python manage.py audit_verify: walk the audit hash chain and compare its end with the chain head; exit 0 when
intact, 1 at the first broken event, a cut end or a checkpoint the chain no longer holds, 2 on a malformed
checkpoint."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from workforce.audit import (
    CHECKPOINT_FORMAT,
    chain_checkpoint,
    check_chain_end,
    check_checkpoints,
    parse_checkpoint,
    seal_all_audit_events,
    verify_audit_chain,
)
from workforce.models import AuditEvent


class Command(BaseCommand):
    help = (
        "Verify the audit trail's hash chain. Exit code 1 names the first event whose hash does not match; "
        "the printed checkpoint, kept outside the database, can be checked again later with --checkpoint."
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
        broken = verify_audit_chain()
        if broken is not None:
            raise CommandError(
                f"Audit event {broken.pk} ({broken.action} on {broken.object_type} {broken.object_id}, "
                f"{broken.created_at:%Y-%m-%d %H:%M:%S} UTC) does not match its hash: the trail was altered "
                "at or before this event.",
                returncode=1,
            )
        problem = check_chain_end() or check_checkpoints(checkpoints)
        if problem is not None:
            raise CommandError(problem, returncode=1)
        held = f", {len(checkpoints)} checkpoint(s) held" if checkpoints else ""
        self.stdout.write(
            f"Audit trail intact: {AuditEvent.objects.count()} event(s) verified{held}. "
            f"Checkpoint (keep it outside the database): {chain_checkpoint()}"
        )
