"""python manage.py import_items --job JOB FILE [--format csv|jsonl] [--id-column NAME | --ids-from-content]"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tasks.management.importing import job_and_file, refused_imports
from tasks.services.imports import CONTENT_IDS, FORMATS, import_items
from workforce.audit import Actor


class Command(BaseCommand):
    help = "Import items into a job from a CSV or JSON Lines file. All or nothing; re-importing is a no-op."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--job", required=True, type=int, help="The job's id.")
        parser.add_argument("file", type=Path)
        parser.add_argument("--format", choices=FORMATS, help="Default: from the file's extension.")
        ids = parser.add_mutually_exclusive_group()
        ids.add_argument("--id-column", metavar="NAME", help="CSV: take each item's id from this column.")
        ids.add_argument(
            "--ids-from-content",
            action="store_true",
            help="CSV without ids (an MTurk batch input file): each row's id is a digest of its cells.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        job, path = job_and_file(options)
        started = time.perf_counter()
        with refused_imports(path, self.stderr), path.open("rb") as stream:
            result = import_items(
                job=job,
                stream=stream,
                filename=path.name,
                fmt=options["format"],
                actor=Actor.system("import_items command"),
                id_column=CONTENT_IDS if options["ids_from_content"] else options["id_column"],
            )
        seconds = time.perf_counter() - started
        self.stdout.write(
            f"Imported {result.created} new item(s) into job {job.pk} ({result.unchanged} unchanged, "
            f"{result.hits_created} new Hit(s)) in {seconds:.1f} s."
        )
