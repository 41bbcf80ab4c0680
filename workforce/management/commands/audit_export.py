"""python manage.py audit_export --since DATE [--until DATE] [--action A] [--object-type T] [--object-id ID]
[--actor WHO] --format jsonl|csv [--output FILE]"""

from __future__ import annotations

import csv
import getpass
import json
from contextlib import suppress
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.db.models import Q
from django.utils import timezone

from workforce.audit import CANONICAL_FIELDS, Actor, record_audit_event, seal_all_audit_events
from workforce.models import AuditEvent

FIELDS = ["id", *CANONICAL_FIELDS, "previous_hash", "hash"]
CHUNK_ROWS = 5000  # rows fetched at a time: memory stays this many rows, whatever the export's size
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Option -> (model field, the longest value it can hold).
TEXT_FILTERS = {
    "action": ("action", 64),
    "object_type": ("object_type", 64),
    "object_id": ("object_id", 64),
    "actor": ("actor_label", 150),
}


def _parse_time(option: str, raw: str, *, end_of_day: bool = False) -> datetime:
    """An ISO date or date-time in UTC; a date alone is the start of that day (its end for ``--until``)."""
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise CommandError(
            f"--{option} must be a date or time like 2026-11-01 or 2026-11-01T08:00, not {raw!r}.", returncode=2
        ) from None
    if len(raw) <= 10:
        parsed = datetime.combine(parsed.date(), time.max if end_of_day else time.min)
    if not timezone.is_aware(parsed):
        return timezone.make_aware(parsed, UTC)
    try:  # in UTC here, so the database never has to convert a time that falls outside the years 1-9999 in UTC
        return parsed.astimezone(UTC)
    except OverflowError:
        raise CommandError(
            f"--{option} {raw!r} falls outside the years 1 to 9999 in UTC; give a later or earlier time.", returncode=2
        ) from None


def _text_filter(option: str, raw: str, max_length: int) -> str:
    if not raw or len(raw) > max_length or not raw.isprintable():
        shown = raw if len(raw) <= 80 else f"{raw[:80]}…"
        flag = option.replace("_", "-")
        raise CommandError(f"--{flag} must be 1 to {max_length} printable characters, not {shown!r}.", returncode=2)
    return raw


def _actor_filter(raw: str) -> Q:
    """``--actor``: an actor label (a user name, ``worker 7``, a process name) or ``KIND:ID`` (``user:3``)."""
    kind, sep, actor_id = raw.partition(":")
    by_label = Q(actor_label=raw)
    if sep and actor_id and kind in AuditEvent.ActorKind.values:
        return by_label | Q(actor_kind=kind, actor_id=actor_id)
    return by_label


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return f"'{value}"
    return value


class _Unterminated:
    """``self.stdout`` without the line ending ``OutputWrapper`` adds (the rows carry their own)."""

    def __init__(self, wrapper: OutputWrapper) -> None:
        self._wrapper = wrapper

    def write(self, text: str) -> None:
        self._wrapper.write(text, ending="")

    def close(self) -> None:
        self._wrapper.flush()


class Command(BaseCommand):
    help = (
        "Export audit events from a date on (optionally up to a date, of one action, object or actor), as JSON "
        "Lines or CSV (streamed, oldest first). CSV cells that a spreadsheet would run as a formula start with '."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", required=True, help="ISO date or date-time (UTC when no offset).")
        parser.add_argument("--until", help="ISO date or date-time, included (a date alone: to its end).")
        parser.add_argument("--action", help="Only events of this action, e.g. job.configured.")
        parser.add_argument("--object-type", help="Only events about this kind of object, e.g. job.")
        parser.add_argument("--object-id", help="Only events about the object with this id.")
        parser.add_argument("--actor", help="Only events by this actor: a label, or KIND:ID such as user:3.")
        parser.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
        parser.add_argument("--output", help="File to write (default: standard output).")

    def handle(self, *args: Any, **options: Any) -> None:
        since = _parse_time("since", options["since"])
        until = _parse_time("until", options["until"], end_of_day=True) if options["until"] is not None else None
        if until is not None and until < since:
            raise CommandError(
                f"--until {options['until']!r} is before --since {options['since']!r}; nothing lies between.",
                returncode=2,
            )
        texts = {
            option: _text_filter(option, options[option], max_length)
            for option, (_, max_length) in TEXT_FILTERS.items()
            if options[option] is not None
        }
        events = AuditEvent.objects.filter(created_at__gte=since)
        if until is not None:
            events = events.filter(created_at__lte=until)
        for option, value in texts.items():
            field = TEXT_FILTERS[option][0]
            events = events.filter(_actor_filter(value) if option == "actor" else Q(**{field: value}))
        output = Path(options["output"]) if options["output"] else None
        out: Any = _Unterminated(self.stdout)
        if output is not None:  # opened before anything is sealed or audited
            try:
                out = output.open("w", newline="")
            except OSError as exc:
                raise CommandError(f"Cannot write {output} ({exc.strerror or exc}).", returncode=2) from exc
        try:
            seal_all_audit_events()  # export the complete trail, pending hot-path events included
            count = self._write(events.order_by("id").values(*FIELDS), out, options["format"])
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
        scope = {"since": since.isoformat()} | ({"until": until.isoformat()} if until is not None else {}) | texts
        record_audit_event(  # exports are audited too (after the export, so it is not part of it)
            actor=Actor.system(f"audit_export (os user {getpass.getuser()})"),
            action="audit.exported",
            object_type="audit_trail",
            object_id="",
            after={**scope, "format": options["format"], "events": count},
        )
        described = " ".join(f"{key.replace('_', ' ')} {value}" for key, value in scope.items())
        self.stderr.write(f"Exported {count} audit event(s) {described}.")

    @staticmethod
    def _write(rows: Any, out: Any, fmt: str) -> int:
        """Stream ``rows`` to ``out`` (never all in memory); how many were written."""
        count = 0
        writer = csv.DictWriter(out, fieldnames=FIELDS) if fmt == "csv" else None
        if writer is not None:
            writer.writeheader()
        for row in rows.iterator(chunk_size=CHUNK_ROWS):
            row = {**row, "created_at": row["created_at"].isoformat()}
            if writer is not None:
                row |= {"before": json.dumps(row["before"]), "after": json.dumps(row["after"])}
                writer.writerow({key: csv_cell(value) for key, value in row.items()})
            else:
                out.write(json.dumps(row, sort_keys=True, default=str) + "\n")
            count += 1
        return count
