"""python manage.py audit_verify: walk the audit hash chain and compare its end with the chain head; exit 0 when
intact, 1 at the first broken event or a cut end."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from workforce.audit import check_chain_end, seal_all_audit_events, verify_audit_chain
from workforce.models import AuditEvent


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain. Exit code 1 names the first event whose hash does not match."

    def handle(self, *args: Any, **options: Any) -> None:
        seal_all_audit_events()  # the hot paths' pending events join the chain first
        broken = verify_audit_chain()
        if broken is not None:
            raise CommandError(
                f"Audit event {broken.pk} ({broken.action} on {broken.object_type} {broken.object_id}, "
                f"{broken.created_at:%Y-%m-%d %H:%M:%S} UTC) does not match its hash: the trail was altered "
                "at or before this event.",
                returncode=1,
            )
        cut = check_chain_end()
        if cut is not None:
            raise CommandError(cut, returncode=1)
        self.stdout.write(f"Audit trail intact: {AuditEvent.objects.count()} event(s) verified.")
