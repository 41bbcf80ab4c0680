"""python manage.py export_labels --job JOB --format csv|jsonl|coco|manifest|mturk --output FILE [--version N]"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.models import DatasetVersion, Job
from tasks.services.errors import ServiceError
from tasks.services.exports import KNOWN_FORMATS, ExportOptions, export_labels
from workforce.audit import Actor


class Command(BaseCommand):
    help = "Export a job's consensus labels (or a stored dataset version) to a file, streaming."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # Our --version (a dataset version number) replaces Django's --version.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--job", required=True, type=int, help="The job's id.")
        parser.add_argument("--format", required=True, choices=KNOWN_FORMATS)
        parser.add_argument("--output", required=True, type=Path, help="The file to write (replaced atomically).")
        parser.add_argument("--version", type=int, help="Export this dataset version instead of the live labels.")
        parser.add_argument("--answers", action="store_true", help="Add every individual answer.")
        parser.add_argument("--scores", action="store_true", help="Add each answering worker's scores.")
        parser.add_argument("--cost", action="store_true", help="Add the cost of each label (from the ledger).")
        parser.add_argument("--min-confidence", type=float, help="Only labels at least this confident.")
        parser.add_argument(
            "--worker-ids",
            action="store_true",
            help="Write marketplace worker ids as given (personal data); by default answers carry a stable pseudonym.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        min_confidence = options["min_confidence"]
        if min_confidence is not None and not 0 <= min_confidence <= 1:  # NaN fails both comparisons
            raise CommandError("--min-confidence must be a number between 0 and 1.", returncode=2)
        output: Path = options["output"]
        if output.is_dir():
            raise CommandError(f"{output} is a directory; name the file to write.", returncode=2)
        if not output.parent.is_dir():
            raise CommandError(f"The directory {output.parent} does not exist.", returncode=2)
        job = Job.objects.filter(pk=options["job"]).first()
        if job is None:
            raise CommandError(f"There is no job with id {options['job']}.", returncode=2)
        version = None
        if options["version"] is not None:
            version = DatasetVersion.objects.filter(job=job, number=options["version"]).first()
            if version is None:
                raise CommandError(f"Job {job.pk} has no dataset version {options['version']}.", returncode=2)
        wanted = ExportOptions(
            answers=options["answers"],
            scores=options["scores"],
            cost=options["cost"],
            min_confidence=min_confidence,
            worker_ids=options["worker_ids"],
        )
        interactive = sys.stderr.isatty()

        def progress(done: int, total: int) -> None:
            if interactive:
                self.stderr.write(f"\r{done}/{total} labels", ending="")

        # Written beside the target and renamed at the end: a failed export leaves no half-written file.
        try:
            handle, temp_name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.")
        except OSError as exc:
            raise CommandError(f"Cannot write {output} ({exc.strerror or exc}).", returncode=2) from exc
        try:
            with os.fdopen(handle, "wb") as out:
                result = export_labels(
                    job=job,
                    fmt=options["format"],
                    out=out,
                    actor=Actor.system("export_labels command"),
                    options=wanted,
                    version=version,
                    progress=progress,
                )
            os.replace(temp_name, output)
        except ServiceError as exc:
            os.unlink(temp_name)
            raise CommandError(str(exc), returncode=2) from exc
        except OSError as exc:  # e.g. the disk filled up, or the target became a directory meanwhile
            os.unlink(temp_name)
            raise CommandError(f"Cannot write {output} ({exc.strerror or exc}).", returncode=2) from exc
        except BaseException:
            os.unlink(temp_name)
            raise
        if interactive:
            self.stderr.write("")
        self.stdout.write(
            f"Wrote {result.rows} label(s) of job {job.pk} as {result.format} to {output} "
            f"({result.bytes} bytes, sha256 {result.sha256})."
        )
