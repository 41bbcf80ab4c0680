"""python manage.py export_mturk_results --job JOB --output FILE.csv"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.models import Job
from tasks.services.mturk_results import export_mturk_results


class Command(BaseCommand):
    help = "Write a job's results as an MTurk requester-UI batch results CSV (importable again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--job", required=True, type=int, help="The job's id.")
        parser.add_argument("--output", required=True, type=Path, help="The CSV file to write.")

    def handle(self, *args: Any, **options: Any) -> None:
        job = Job.objects.filter(pk=options["job"]).first()
        if job is None:
            raise CommandError(f"There is no job with id {options['job']}.", returncode=2)
        path: Path = options["output"]
        try:
            with path.open("w", encoding="utf-8", newline="") as stream:
                rows = export_mturk_results(job, stream)
        except OSError as exc:
            raise CommandError(f"Cannot write {path} ({exc.strerror}).", returncode=2) from exc
        self.stdout.write(f"Wrote {rows} result row(s) of job {job.pk} to {path}.")
