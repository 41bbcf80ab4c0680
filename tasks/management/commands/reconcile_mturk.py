"""python manage.py reconcile_mturk --job JOB [--endpoint-url URL] [--opening-balance X [--since DATE]] [--json]

Exit code 0 when the ledger and MTurk agree, 1 when differences were found (each one printed), 2 on bad
input or when MTurk cannot be read.
"""

from __future__ import annotations

import json
from datetime import UTC
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from tasks.models import Job
from tasks.reports.reconciliation import reconcile_mturk
from workforce.marketplaces import mturk_records
from workforce.marketplaces.base import MarketplaceError


class Command(BaseCommand):
    help = "Compare a job's MTurk bonuses (and the account balance) in the ledger with MTurk's own records."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--job", type=int, required=True)
        parser.add_argument("--endpoint-url", help="Read a stand-in MTurk server instead of AWS.")
        parser.add_argument("--opening-balance", help="MTurk's balance at --since, to check the balance too.")
        parser.add_argument("--since", help="ISO time of the opening balance (default: the ledger's beginning).")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **o: Any) -> None:
        job = Job.objects.filter(pk=o["job"]).first()
        if job is None:
            raise CommandError(f"There is no job with id {o['job']}.", returncode=2)
        opening = None
        if o["opening_balance"] is not None:
            try:
                opening = Decimal(o["opening_balance"])
            except InvalidOperation:
                raise CommandError("--opening-balance must be an amount, e.g. 1000.00.", returncode=2) from None
        since = None
        if o["since"]:
            try:  # parse_datetime raises on a well-formed but impossible date (2026-02-30), None on other text
                since = parse_datetime(o["since"])
                if since is not None and timezone.is_aware(since):
                    since = since.astimezone(UTC)  # 0001-01-01T00:00+05:00 falls before the first UTC instant
            except (ValueError, OverflowError):
                since = None
            if since is None:
                raise CommandError("--since must be an ISO date and time, e.g. 2026-01-01T00:00:00Z.", returncode=2)
        try:
            records = mturk_records.mturk_records(endpoint_url=o["endpoint_url"])
            result = reconcile_mturk(job=job, records=records, opening_balance=opening, since=since)
        except MarketplaceError as exc:
            raise CommandError(f"MTurk could not be read: {exc}", returncode=2) from exc
        if o["json"]:
            self.stdout.write(json.dumps(result.as_json()))
        else:
            self.stdout.write(
                f"Job {job.pk}: {result.hits_checked} HITs; ledger bonuses {result.ledger_bonus_total}, "
                f"MTurk bonuses {result.marketplace_bonus_total}; {len(result.differences)} difference(s)."
            )
            for d in result.differences:
                self.stdout.write(
                    f"  {d.kind}: worker {d.worker} {d.assignment} ledger={d.ledger} mturk={d.marketplace} {d.detail}"
                )
        if result.differences:
            raise SystemExit(1)
