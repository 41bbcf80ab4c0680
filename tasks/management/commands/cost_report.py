"""python manage.py cost_report --job JOB [--by worker|marketplace|day|month] [--format text|csv|json]"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.models import Job
from tasks.reports.exports import export_cost_breakdown
from tasks.reports.selectors import GROUPINGS, get_cost_report


class Command(BaseCommand):
    help = "What a job's labels cost: ledger totals, approved work, consensus labels, cost per label, budget."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--job", type=int, required=True)
        parser.add_argument("--by", choices=GROUPINGS, help="Also break the cost down by this.")
        parser.add_argument("--format", choices=["text", "csv", "json"], default="text")

    def handle(self, *args: Any, **o: Any) -> None:
        job = Job.objects.filter(pk=o["job"]).first()
        if job is None:
            raise CommandError(f"There is no job with id {o['job']}.", returncode=2)
        if o["format"] == "csv":
            self.stdout.write(export_cost_breakdown(job, by=o["by"] or "kind", fmt="csv").decode(), ending="")
            return
        report = get_cost_report(job, by=o["by"])
        if o["format"] == "json":
            self.stdout.write(json.dumps(report.as_json()))
            return
        self.stdout.write(
            f"Job {report.job} ({report.name}): {report.total} {report.currency} for {report.approved_assignments} "
            f"approved assignments and {report.labels} labels; cost per label {report.cost_per_label}."
        )
        for row in report.rows:
            self.stdout.write(f"  {row[o['by']]}: {row['total']} ({row['entries']} entries)")
