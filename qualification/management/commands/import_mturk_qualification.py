"""python manage.py import_mturk_qualification --questions Q.xml --answers A.xml --name NAME [options]"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from qualification.errors import QualificationError
from qualification.models import TaskKind
from qualification.mturk_xml import import_mturk_test
from workforce.audit import Actor


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CommandError(f"{path} is not a readable file.", returncode=2) from exc


class Command(BaseCommand):
    help = "Create a qualification test from an MTurk QuestionForm XML and its AnswerKey XML."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--questions", required=True, type=Path, help="QuestionForm XML file.")
        parser.add_argument("--answers", required=True, type=Path, help="AnswerKey XML file.")
        parser.add_argument("--name", required=True, help="The test's name.")
        parser.add_argument("--task-kind", choices=TaskKind.values, default=TaskKind.TEXT_CLASSIFICATION)
        parser.add_argument("--pass-score", type=int, default=80, help="Percentage to pass (0-100). Default 80.")
        parser.add_argument("--time-limit-minutes", type=int, default=10)
        parser.add_argument("--retry-delay-hours", type=float, default=24.0)
        parser.add_argument("--max-attempts", type=int, default=3)
        parser.add_argument("--inactive", action="store_true", help="Create the test switched off.")

    def handle(self, *args: Any, **options: Any) -> None:
        questions, answers = _read(options["questions"]), _read(options["answers"])
        if not options["name"].strip():
            raise CommandError("--name must not be empty.", returncode=2)
        try:
            test = import_mturk_test(
                questions_xml=questions,
                answers_xml=answers,
                name=options["name"].strip(),
                actor=Actor.system("import_mturk_qualification command"),
                task_kind=options["task_kind"],
                pass_score=options["pass_score"],
                time_limit=timedelta(minutes=options["time_limit_minutes"]),
                retry_delay=timedelta(hours=options["retry_delay_hours"]),
                max_attempts=options["max_attempts"],
                is_active=not options["inactive"],
            )
        except QualificationError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        count = test.questions.count()
        self.stdout.write(f"Created qualification test {test.pk} “{test.name}” with {count} question(s).")
