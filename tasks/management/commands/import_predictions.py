"""python manage.py import_predictions --job JOB --model NAME FILE

FILE is CSV (``external_id,label,score``; ``value`` instead of ``label`` for JSON values such as drawings)
or JSON Lines. All rows or none; importing a model again replaces its earlier predictions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.models import Job
from tasks.services.errors import ImportValidationError, ServiceError
from tasks.services.predictions import import_predictions
from workforce.audit import Actor


class Command(BaseCommand):
    help = "Import a model's predictions (label and score per item) into a job."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--job", required=True, type=int, help="The job's id.")
        parser.add_argument("--model", required=True, help="The model's name (and version).")
        parser.add_argument("file", type=Path)
        parser.add_argument("--json", action="store_true", help="Print the result as one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        job = Job.objects.filter(pk=options["job"]).first()
        if job is None:
            raise CommandError(f"There is no job with id {options['job']}.", returncode=2)
        if not path.is_file():
            raise CommandError(f"{path} is not a readable file.", returncode=2)
        try:
            with path.open("rb") as stream:
                result = import_predictions(
                    job=job,
                    stream=stream,
                    filename=path.name,
                    model_name=options["model"],
                    actor=Actor.system("import_predictions command"),
                )
        except ImportValidationError as exc:
            for error in exc.errors:
                self.stderr.write(f"{path}: {error}")
            raise CommandError(f"{exc.total_bad} bad row(s) in {path}; nothing was imported.", returncode=2) from exc
        except ServiceError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        if options["json"]:
            self.stdout.write(json.dumps({"job": job.pk, **result.__dict__}))
        else:
            self.stdout.write(
                f"Imported {result.created} new and {result.updated} updated prediction(s) of {result.model_name} "
                f"into job {job.pk}; {result.hits_reprioritised} Hit(s) re-ordered, least certain first."
            )
