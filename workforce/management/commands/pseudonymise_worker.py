"""python manage.py pseudonymise_worker WORKER [--reason TEXT]: erase a worker's personal data on request."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workforce.audit import Actor
from workforce.ids import parse_id
from workforce.models import Worker
from workforce.services import WorkerError, pseudonymise_worker


def _find(ref: str) -> Worker:
    """``ref`` is our worker id (``17``) or ``marketplace:external_id`` (``mturk:A1B2C3``)."""
    if ref.isascii() and ref.isdigit():
        number = parse_id(ref)
        worker = Worker.objects.filter(pk=number).first() if number is not None else None
    elif ":" in ref:
        marketplace, external_id = ref.split(":", 1)
        worker = Worker.objects.filter(marketplace=marketplace, external_id=external_id).first()
    else:
        raise CommandError("Name the worker by id (17) or as marketplace:external_id (mturk:A1B2C3).", returncode=2)
    if worker is None:
        raise CommandError(f"No worker matches {ref!r}.", returncode=2)
    return worker


class Command(BaseCommand):
    help = (
        "Replace a worker's marketplace id, display name and user details by pseudonyms. The ledger, the "
        "work and the audit chain stay valid (audit_verify still passes)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("worker", help="Worker id, or marketplace:external_id.")
        parser.add_argument("--reason", default="Erasure requested by the worker.")

    def handle(self, *args: Any, **options: Any) -> None:
        worker = _find(options["worker"])
        actor = Actor.system(f"pseudonymise_worker command (os user {getpass.getuser()})")
        try:
            erased = pseudonymise_worker(worker=worker, actor=actor, reason=options["reason"])
        except WorkerError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        self.stdout.write(f"Worker {erased.pk} pseudonymised as {erased.external_id}.")
