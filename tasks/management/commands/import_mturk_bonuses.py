"""python manage.py import_mturk_bonuses --job JOB FILE.csv [--json]"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.models import Job
from tasks.services.errors import ServiceError
from tasks.services.mturk_results.bonuses import import_mturk_bonuses
from workforce.audit import Actor


class Command(BaseCommand):
    help = (
        "Book bonuses paid on MTurk before the move (a workerId,assignmentId,bonusAmount,reason file, or "
        "ListBonusPayments as CSV) and MTurk's fees on them in a job's ledger. Re-importing a file is a no-op."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--job", type=int, required=True, help="The job the bonuses were paid for.")
        parser.add_argument("file", type=Path)
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        job = Job.objects.filter(pk=options["job"]).first()
        if job is None:
            raise CommandError(f"There is no job with id {options['job']}.", returncode=2)
        try:
            data = path.read_bytes()
        except OSError:
            raise CommandError(f"{path} is not a readable file.", returncode=2) from None
        try:
            result = import_mturk_bonuses(
                job=job, data=data, filename=path.name, actor=Actor.system("import_mturk_bonuses command")
            )
        except ServiceError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), indent=2))
            return
        self.stdout.write(
            f"Job {result.job}: {result.rows} row(s), {result.bonuses_booked} bonus(es) booked "
            f"({result.amount_booked} + {result.fees_booked} MTurk fees, USD), {result.already_booked} already "
            f"booked, {len(result.rows_skipped)} skipped, {len(result.rows_unlinked)} without a known assignment."
        )
        for row in [*result.rows_skipped, *result.rows_unlinked][:20]:
            self.stdout.write(f"  line {row['line']}: {row['reason']}")
