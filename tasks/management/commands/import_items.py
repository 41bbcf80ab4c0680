"""python manage.py import_items --job JOB FILE [--format csv|jsonl]"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.models import Job
from tasks.services.errors import ImportValidationError, ServiceError
from tasks.services.imports import FORMATS, import_items
from workforce.audit import Actor


class Command(BaseCommand):
    help = "Import items into a job from a CSV or JSON Lines file. All or nothing; re-importing is a no-op."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--job", required=True, type=int, help="The job's id.")
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", choices=FORMATS, help="Default: from the file's extension.")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        job = Job.objects.filter(pk=options["job"]).first()
        if job is None:
            raise CommandError(f"There is no job with id {options['job']}.", returncode=2)
        if not path.is_file():
            raise CommandError(f"{path} is not a readable file.", returncode=2)
        started = time.perf_counter()
        try:
            with path.open("rb") as stream:
                result = import_items(
                    job=job,
                    stream=stream,
                    filename=path.name,
                    fmt=options["format"],
                    actor=Actor.system("import_items command"),
                )
        except ImportValidationError as exc:
            for error in exc.errors:
                self.stderr.write(f"{path}: {error}")
            raise CommandError(f"{exc.total_bad} bad row(s) in {path}; nothing was imported.", returncode=2) from exc
        except ServiceError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        seconds = time.perf_counter() - started
        self.stdout.write(
            f"Imported {result.created} new item(s) into job {job.pk} ({result.unchanged} unchanged, "
            f"{result.hits_created} new Hit(s)) in {seconds:.1f} s."
        )
