"""python manage.py audit_export --since DATE --format jsonl|csv [--output FILE]"""

from __future__ import annotations

import csv
import getpass
import json
import sys
from contextlib import suppress
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from workforce.audit import CANONICAL_FIELDS, Actor, record_audit_event, seal_all_audit_events
from workforce.models import AuditEvent

FIELDS = ["id", *CANONICAL_FIELDS, "previous_hash", "hash"]


def _parse_since(raw: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise CommandError(
            f"--since must be a date or time like 2026-11-01 or 2026-11-01T08:00, not {raw!r}.", returncode=2
        ) from None
    if len(raw) <= 10:
        parsed = datetime.combine(parsed.date(), time.min)
    if not timezone.is_aware(parsed):
        return timezone.make_aware(parsed, UTC)
    try:  # in UTC here, so the database never has to convert a time that falls outside the years 1-9999 in UTC
        return parsed.astimezone(UTC)
    except OverflowError:
        raise CommandError(
            f"--since {raw!r} falls outside the years 1 to 9999 in UTC; give a later or earlier time.", returncode=2
        ) from None


class Command(BaseCommand):
    help = "Export audit events from a date on, as JSON Lines or CSV (streamed, oldest first)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", required=True, help="ISO date or date-time (UTC when no offset).")
        parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
        parser.add_argument("--output", help="File to write (default: standard output).")

    def handle(self, *args: Any, **options: Any) -> None:
        since = _parse_since(options["since"])
        output = Path(options["output"]) if options["output"] else None
        out: TextIO = sys.stdout
        if output is not None:  # opened before anything is sealed or audited
            try:
                out = output.open("w", newline="")
            except OSError as exc:
                raise CommandError(f"Cannot write {output} ({exc.strerror or exc}).", returncode=2) from exc
        try:
            seal_all_audit_events()  # export the complete trail, pending hot-path events included
            events = AuditEvent.objects.filter(created_at__gte=since).order_by("id").values(*FIELDS)
            count = 0
            if options["format"] == "csv":
                writer = csv.DictWriter(out, fieldnames=FIELDS)
                writer.writeheader()
            for row in events.iterator(chunk_size=5000):
                row = {**row, "created_at": row["created_at"].isoformat()}
                if options["format"] == "csv":
                    writer.writerow({**row, "before": json.dumps(row["before"]), "after": json.dumps(row["after"])})
                else:
                    out.write(json.dumps(row, sort_keys=True, default=str) + "\n")
                count += 1
            if output is not None:
                out.close()
        except OSError as exc:  # e.g. the disk filled up: no half-written export is left behind
            if output is not None:
                with suppress(OSError):
                    out.close()
                if output.is_file():  # not a device such as /dev/full
                    output.unlink(missing_ok=True)
            raise CommandError(
                f"Cannot write {output or 'standard output'} ({exc.strerror or exc}).", returncode=2
            ) from exc
        except BaseException:
            if output is not None:
                with suppress(OSError):
                    out.close()
            raise
        record_audit_event(  # exports are audited too (after the export, so it is not part of it)
            actor=Actor.system(f"audit_export (os user {getpass.getuser()})"),
            action="audit.exported",
            object_type="audit_trail",
            object_id="",
            after={"since": since.isoformat(), "format": options["format"], "events": count},
        )
        self.stderr.write(f"Exported {count} audit event(s) since {since.isoformat()}.")
