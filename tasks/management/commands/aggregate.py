"""``manage.py aggregate``: consensus labels for a CSV of answers, without the database.

    python manage.py aggregate --answers answers.csv --method ds --output consensus.csv [--gold gold.csv]

``answers.csv`` has the header ``task,worker,label``; the output gets ``task,label,confidence``, one
row per task.  Exit code 2 with one sentence naming the line on bad input.  numpy and the
aggregation package are imported inside ``handle`` so that ``manage.py`` stays quick to start.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

METHODS = ("mv", "wmv", "wawa", "ds", "ods", "glad", "mace")
PROGRESS_AFTER_ANSWERS = 200_000


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
        from tasks.aggregation.io import InputError, read_answers_csv, read_gold_csv, write_consensus_csv
        from tasks.aggregation.registry import get_aggregator

        started = time.perf_counter()
        try:
            gold = read_gold_csv(options["gold"]) if options["gold"] else None
            answers = read_answers_csv(options["answers"], extra_labels=list(gold.values()) if gold else ())
        except InputError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        if answers.n_duplicates:
            self.stderr.write(
                f"warning: {answers.n_duplicates} answer(s) replaced: a worker answered the same task "
                "more than once; the last answer was kept."
            )
        verbose = answers.n_answers >= PROGRESS_AFTER_ANSWERS

        def progress(message: str) -> None:
            sys.stderr.write(f"aggregate: {message} ({time.perf_counter() - started:.1f}s)\n")
            sys.stderr.flush()

        if verbose:
            progress(
                f"read {answers.n_answers:,} answers: {answers.n_tasks:,} tasks, "
                f"{answers.n_workers:,} workers, {answers.n_classes} labels; running {options['method']}"
            )
        params: dict[str, Any] = (
            {"progress": progress} if verbose and options["method"] not in {"mv", "wmv", "wawa"} else {}
        )
        model = get_aggregator(options["method"], **params)
        try:
            model.fit(answers, gold)
        except ValueError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        try:
            write_consensus_csv(
                options["output"], answers.task_names, answers.classes[model.label_codes_], model.confidence_
            )
        except OSError as exc:
            raise CommandError(f"{options['output']}: cannot write ({exc.strerror or exc}).", returncode=2) from exc
        if verbose:
            progress(f"wrote {answers.n_tasks:,} labels to {options['output']}")
