"""python manage.py recount_tallies [--job JOB ...]: rebuild the per-job tallies from the rows themselves.

Needed only after rows were written with the triggers off (a bulk load in ``session_replication_role =
replica``, a restore of some tables); otherwise it finds nothing to correct. On PostgreSQL writers to Hits,
Items and the ledger wait while it counts (seconds for millions of rows).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.api.converters import MAX_ID
from tasks.models import Job
from tasks.services.tallies import recount_tallies
from workforce.audit import Actor


class Command(BaseCommand):
    help = "Recount the per-job progress, item and cost tallies from the Hits, Items and ledger rows."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--job", type=int, action="append", help="A job's id (repeatable; default: all jobs).")

    def handle(self, *args: Any, **options: Any) -> None:
        job_ids: list[int] | None = options["job"]
        if job_ids:
            in_range = [j for j in job_ids if 1 <= j <= MAX_ID]  # larger ids overflow the database's integers
            found = set(Job.objects.filter(pk__in=in_range).values_list("pk", flat=True))
            missing = [str(j) for j in job_ids if j not in found]
            if missing:
                raise CommandError(f"No job {', '.join(missing)}.", returncode=2)
        result = recount_tallies(actor=Actor.system("recount_tallies command"), job_ids=job_ids)
        fixed = ", ".join(map(str, result.corrected)) or "none"
        self.stdout.write(f"Recounted: corrected {len(result.corrected)} of {result.jobs} job(s): {fixed}.")
