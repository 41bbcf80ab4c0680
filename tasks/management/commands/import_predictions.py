"""python manage.py import_predictions --job JOB --model NAME FILE

FILE is CSV (``external_id,label,score``; ``value`` instead of ``label`` for JSON values such as drawings)
or JSON Lines. All rows or none; importing a model again replaces its earlier predictions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tasks.management.importing import job_and_file, refused_imports
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
        job, path = job_and_file(options)
        with refused_imports(path, self.stderr), path.open("rb") as stream:
            result = import_predictions(
                job=job,
                stream=stream,
                filename=path.name,
                model_name=options["model"],
                actor=Actor.system("import_predictions command"),
            )
        if options["json"]:
            self.stdout.write(json.dumps({"job": job.pk, **result.__dict__}))
        else:
            self.stdout.write(
                f"Imported {result.created} new and {result.updated} updated prediction(s) of {result.model_name} "
                f"into job {job.pk}; {result.hits_reprioritised} Hit(s) re-ordered, least certain first."
            )
