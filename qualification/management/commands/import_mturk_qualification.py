"""python manage.py import_mturk_qualification --questions Q.xml --answers A.xml --name NAME [options]"""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from qualification.errors import QualificationError
from qualification.models import MAX_RETRY_DELAY, MAX_TIME_LIMIT, TaskKind
from qualification.mturk_xml import import_mturk_test_once
from workforce.audit import Actor


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CommandError(f"{path} is not a readable file.", returncode=2) from exc


MAX_TIME_LIMIT_MINUTES = int(MAX_TIME_LIMIT.total_seconds() // 60)
MAX_RETRY_DELAY_HOURS = int(MAX_RETRY_DELAY.total_seconds() // 3600)


class Command(BaseCommand):
    help = (
        "Create a qualification test from an MTurk QuestionForm XML and its AnswerKey XML. Importing the same "
        "files under the same name again is a no-op; other files under a current test's name are refused."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--questions", required=True, type=Path, help="QuestionForm XML file.")
        parser.add_argument("--answers", required=True, type=Path, help="AnswerKey XML file.")
        parser.add_argument("--name", required=True, help="The test's name.")
        parser.add_argument("--task-kind", choices=TaskKind.values, default=TaskKind.TEXT_CLASSIFICATION)
        parser.add_argument("--pass-score", type=int, default=80, help="Percentage to pass (0-100). Default 80.")
        parser.add_argument(
            "--time-limit-minutes",
            type=int,
            default=10,
            help=f"Time to answer the test (1-{MAX_TIME_LIMIT_MINUTES}). Default 10.",
        )
        parser.add_argument(
            "--retry-delay-hours",
            type=float,
            default=24.0,
            help=f"Wait after a failed attempt (0-{MAX_RETRY_DELAY_HOURS}). Default 24.",
        )
        parser.add_argument("--max-attempts", type=int, default=3)
        parser.add_argument("--inactive", action="store_true", help="Create the test switched off.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not 1 <= options["time_limit_minutes"] <= MAX_TIME_LIMIT_MINUTES:
            raise CommandError(
                f"--time-limit-minutes must be a whole number from 1 to {MAX_TIME_LIMIT_MINUTES} (7 days).",
                returncode=2,
            )
        retry_hours = options["retry_delay_hours"]
        if not (math.isfinite(retry_hours) and 0 <= retry_hours <= MAX_RETRY_DELAY_HOURS):
            raise CommandError(
                f"--retry-delay-hours must be a number from 0 to {MAX_RETRY_DELAY_HOURS} (365 days).", returncode=2
            )
        questions, answers = _read(options["questions"]), _read(options["answers"])
        if not options["name"].strip():
            raise CommandError("--name must not be empty.", returncode=2)
        try:
            test, created = import_mturk_test_once(
                questions_xml=questions,
                answers_xml=answers,
                name=options["name"].strip(),
                actor=Actor.system("import_mturk_qualification command"),
                task_kind=options["task_kind"],
                pass_score=options["pass_score"],
                time_limit=timedelta(minutes=options["time_limit_minutes"]),
                retry_delay=timedelta(hours=retry_hours),
                max_attempts=options["max_attempts"],
                is_active=not options["inactive"],
            )
        except QualificationError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        count = test.questions.count()
        if not created:
            self.stdout.write(
                f"Qualification test {test.pk} “{test.name}” already holds these {count} question(s) and settings; "
                "nothing was imported."
            )
            return
        self.stdout.write(f"Created qualification test {test.pk} “{test.name}” with {count} question(s).")
