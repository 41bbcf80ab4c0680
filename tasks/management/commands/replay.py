"""``manage.py replay``: measure a redundancy policy on recorded answers, without the database.

    python manage.py replay --answers answers.csv --gold gold.csv --policy adaptive \\
        [--min 2 --max 5 --target 0.997 --concentration 4] [--budget 70%] [--method ds] --seed 1 [--json]

Each item's recorded answers are revealed one at a time in a seeded random order, as if they
arrived live; ``fixed`` takes the first ``--max`` (default: all), ``adaptive`` stops an item when the
probability that its label is final reaches ``--target`` (see :mod:`tasks.aggregation.replay`;
``--concentration`` discounts agreeing answers to one item, 0 treats them as independent; ``--budget`` caps the
answers adaptive may use, as a count or as a share of what fixed uses, and sends them to the neediest items first).
Prints the accuracy of the
``--method`` labels against gold and the number of answers used.  Exit code 2 on bad input.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.aggregation.adaptive import RedundancyPolicy
from tasks.aggregation.registry import CATEGORICAL
from tasks.aggregation.replay import (
    DEFAULT_CONCENTRATION,
    DEFAULT_MIN_ANSWERS,
    DEFAULT_TARGET,
    POLICIES,
    ReplayError,
    run_replay,
)


class Command(BaseCommand):
    help = "Replay recorded answers under a fixed or adaptive redundancy policy; accuracy and answers used."
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--answers", required=True, help="CSV with header task,worker,label")
        parser.add_argument("--gold", required=True, help="CSV with header task,label")
        parser.add_argument("--policy", required=True, choices=POLICIES)
        parser.add_argument(
            "--min", type=int, default=DEFAULT_MIN_ANSWERS, help=f"answers every item gets ({DEFAULT_MIN_ANSWERS})"
        )
        parser.add_argument("--max", type=int, default=None, help="answers an item may get (default: all recorded)")
        parser.add_argument(
            "--target",
            type=float,
            default=DEFAULT_TARGET,
            help=f"confidence that an item's label is final that stops it ({DEFAULT_TARGET})",
        )
        parser.add_argument(
            "--concentration",
            type=float,
            default=DEFAULT_CONCENTRATION,
            help=f"discount of agreeing answers to one item; 0: independent answers ({DEFAULT_CONCENTRATION:g})",
        )
        parser.add_argument(
            "--budget",
            default=None,
            help="answers adaptive may use in all: a number, or a share of what fixed would use (70%%)",
        )
        parser.add_argument("--method", choices=sorted(CATEGORICAL), default="ds", help="final aggregation (ds)")
        parser.add_argument("--seed", type=int, default=0, help="seed of the arrival order")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            redundancy = RedundancyPolicy(
                min_answers=options["min"], max_answers=options["max"], target=options["target"]
            )
        except ValueError as exc:
            raise CommandError(f"{exc}.", returncode=2) from exc
        if options["seed"] < 0:
            raise CommandError("--seed must be 0 or a positive whole number.", returncode=2)
        concentration = options["concentration"]
        if concentration < 0:
            raise CommandError("The concentration must be 0 (independent answers) or positive.", returncode=2)
        try:
            run_replay(
                answers=options["answers"],
                gold=options["gold"],
                policy=options["policy"],
                redundancy=redundancy,
                seed=options["seed"],
                method=options["method"],
                concentration=concentration or None,
                budget=options["budget"],
                as_json=options["json"],
                stdout=self.stdout,  # type: ignore[arg-type]
            )
        except ReplayError as exc:
            raise CommandError(str(exc), returncode=2) from exc
