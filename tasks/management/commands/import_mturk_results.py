"""python manage.py import_mturk_results (--job JOB | --new-job NAME) FILE.csv [--answer-field F] [--skip-bad-rows]
[--skip-unknown-labels] [--json]"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.models import Job
from tasks.services.errors import ServiceError
from tasks.services.mturk_results import import_mturk_results
from workforce.audit import Actor


class Command(BaseCommand):
    help = (
        "Import an MTurk requester-UI batch results CSV (workers, assignments, answers, statuses and times) "
        "into a job, then score workers and compute consensus. Re-importing a file is a no-op."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--job", type=int, help="An existing job's id.")
        target.add_argument("--new-job", metavar="NAME", help="Create a job with this name from the file's answers.")
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--answer-field",
            default="",
            help="The Answer.* field (or <group> of Answer.<group>.<label> boxes) that holds the label.",
        )
        parser.add_argument("--labels", default="", help="A new job's labels, comma-separated (default: inferred).")
        parser.add_argument(
            "--skip-bad-rows",
            action="store_true",
            help="Import a damaged file's whole rows and report the others (default: refuse the file, exit 2).",
        )
        parser.add_argument(
            "--skip-unknown-labels",
            action="store_true",
            help="Import the rows of a file that also answers with labels the job cannot take, and report those "
            "(default: refuse the file, exit 2).",
        )
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        job = None
        if options["job"] is not None:
            job = Job.objects.filter(pk=options["job"]).first()
            if job is None:
                raise CommandError(f"There is no job with id {options['job']}.", returncode=2)
        if options["new_job"] is not None and not options["new_job"].strip():
            raise CommandError("--new-job needs a non-empty name.", returncode=2)
        try:
            data = path.read_bytes()
        except OSError:
            raise CommandError(f"{path} is not a readable file.", returncode=2) from None
        labels = [label.strip() for label in options["labels"].split(",") if label.strip()] or None
        answer_field = options["answer_field"].strip().removeprefix("Answer.")
        try:
            result = import_mturk_results(
                data=data,
                filename=path.name,
                actor=Actor.system("import_mturk_results command"),
                job=job,
                new_job_name=options["new_job"] or "",
                answer_field=answer_field,
                labels=labels,
                skip_bad_rows=options["skip_bad_rows"],
                skip_unknown_labels=options["skip_unknown_labels"],
            )
        except ServiceError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), indent=2))
            return
        verb = "Created" if result.job_created else "Imported into"
        self.stdout.write(
            f"{verb} job {result.job}: {result.rows} row(s), {result.assignments_created} new assignment(s), "
            f"{result.workers_created} new worker(s), {result.items_created} new item(s), "
            f"{len(result.rows_skipped)} row(s) skipped; label field Answer.{result.label_field}."
        )
        if result.labels_added:
            self.stdout.write(
                f"Added label(s) {', '.join(result.labels_added)} to job {result.job}'s label set "
                "(answers an earlier batch never gave)."
            )
        if result.assignments_auto_approved:
            self.stdout.write(
                f"{result.assignments_auto_approved} Submitted row(s) were past their AutoApprovalTime, so MTurk "
                "approved and paid them: imported as approved, their cost booked."
            )
        for restated in result.reviews_restated[:20]:
            self.stdout.write(
                f"  line {restated['line']}: assignment {restated['assignment']} is {restated['after']} now "
                f"(was {restated['before']})." + (f" {restated['note']}" if restated.get("note") else "")
            )
        for updated in result.answers_updated[:20]:
            self.stdout.write(
                f"  line {updated['line']}: assignment {updated['assignment']}'s answer is {updated['after']!r} now "
                f"(was {updated['before']!r})."
            )
        if result.costs_reversed.get("ledger_rows_reversed"):
            self.stdout.write(
                f"Reversed {result.costs_reversed['amount']} {result.costs_reversed['currency']} booked for "
                f"{result.costs_reversed['assignments_reversed']} assignment(s) the file reports as rejected."
            )
        budget = result.budget
        if budget.get("slots_released") or Decimal(budget.get("released", "0")):
            self.stdout.write(
                f"Budget: gave back {budget['released']} of job {result.job}'s reservation "
                f"({budget['slots_released']} slot(s) of rejected work)."
            )
        if budget.get("reservation_refused"):
            self.stdout.write(f"Budget: {budget['reservation_refused']}")
        for skipped in result.rows_skipped[:20]:
            self.stdout.write(f"  line {skipped['line']}: {skipped['reason']}")
        consensus = result.consensus
        if consensus and "error" in consensus:
            self.stdout.write(f"Consensus was not computed: {consensus['error']}")
        elif consensus:
            self.stdout.write(
                f"Consensus ({consensus['method']}): {consensus['items']} item(s) labelled from {consensus['answers']} "
                f"answer(s), mean confidence {consensus['mean_confidence']:.2f}."
            )
