"""python manage.py snapshot_labels --job JOB [--note TEXT]: a new dataset version of the job's labels."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.models import Job
from tasks.services.errors import ServiceError
from tasks.services.exports import create_dataset_version
from workforce.audit import Actor


class Command(BaseCommand):
    help = "Store the job's current consensus labels as its next immutable dataset version."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--job", required=True, type=int, help="The job's id.")
        parser.add_argument("--note", default="", help="A short note kept with the version.")

    def handle(self, *args: Any, **options: Any) -> None:
        job = Job.objects.filter(pk=options["job"]).first()
        if job is None:
            raise CommandError(f"There is no job with id {options['job']}.", returncode=2)
        try:
            version = create_dataset_version(
                job=job, actor=Actor.system("snapshot_labels command"), note=options["note"]
            )
        except ServiceError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        self.stdout.write(
            f"Job {job.pk} version {version.number}: {version.row_count} label(s), sha256 {version.sha256}."
        )
