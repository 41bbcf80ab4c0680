"""``manage.py aggregate``: consensus labels for a CSV of answers, without the database.

    python manage.py aggregate --answers answers.csv --method ds --output consensus.csv [--gold gold.csv]

``answers.csv`` has the header ``task,worker,label``; the output gets ``task,label,confidence``, one
row per task.  Exit code 2 with one sentence naming the line on bad input.  The work is done by
:func:`tasks.aggregation.cli.run_aggregate`; ``manage.py`` runs a plain call of this command through
:func:`tasks.aggregation.cli.fast_main` without setting Django up, and anything else (``--help``,
common options, usage errors) through this class.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.aggregation.cli import METHODS, AggregateError, run_aggregate


class Command(BaseCommand):
    help = "Aggregate crowd answers (task,worker,label CSV) into one label per task with a confidence."
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--answers", required=True, help="CSV with header task,worker,label")
        parser.add_argument("--method", required=True, choices=METHODS, help="aggregation method")
        parser.add_argument("--output", required=True, help="CSV to write: task,label,confidence")
        parser.add_argument("--gold", help="optional CSV task,label of known answers (clamped)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            run_aggregate(
                answers=options["answers"],
                method=options["method"],
                output=options["output"],
                gold=options["gold"],
                stderr=self.stderr,  # type: ignore[arg-type]
            )
        except AggregateError as exc:
            raise CommandError(str(exc), returncode=2) from exc
