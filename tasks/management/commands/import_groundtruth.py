"""python manage.py import_groundtruth (--job JOB | --new-job NAME) --manifest FILE [--worker-responses DIR_OR_TAR]
[--label-attribute NAME] [--gold FILE] [--consolidated-as auto|label|gold|annotator] [--gold-share F]
[--book-costs [--task-price USD]] [--json]"""

from __future__ import annotations

import argparse
import hashlib
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tasks.models import Job
from tasks.selectors_groundtruth import compare_consensus_with_groundtruth
from tasks.services.errors import ServiceError
from tasks.services.groundtruth.importing import import_groundtruth_output, parse_gold_file
from tasks.services.groundtruth.manifest_input import MAX_STORED_BYTES, undecodable
from tasks.services.groundtruth.shapes import CONSOLIDATED_CHOICES
from workforce.audit import Actor
from workforce.marketplaces.groundtruth.formats import (
    GroundTruthFormatError,
    iter_worker_response_files,
    read_worker_responses,
)


def _price(text: str) -> Decimal:
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount in USD (e.g. 0.036)") from None
    if not price.is_finite() or price < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative amount in USD")
    return price


def _read_text(path: Path, option: str) -> str:
    """The UTF-8 text of the file given as ``option`` (a leading byte-order mark dropped); a CommandError
    naming both, and the line of a byte that is not UTF-8, when it cannot be read."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CommandError(f"{option} {path} is not UTF-8 text: {undecodable(exc)}.", returncode=2) from None
    except FileNotFoundError:
        raise CommandError(f"{option} {path} does not exist.", returncode=2) from None
    except OSError as exc:
        raise CommandError(f"{option} {path} cannot be read ({exc.strerror or exc}).", returncode=2) from None


def _in_share(key: str, share: float) -> bool:
    """A stable pseudo-random choice of about ``share`` of the keys."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share


class Command(BaseCommand):
    help = (
        "Import a finished SageMaker Ground Truth job (output manifest and raw worker responses) into a job; "
        "re-importing is a no-op."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--job", type=int, help="An existing job's id.")
        target.add_argument("--new-job", metavar="NAME", help="Create a Ground Truth job with this name.")
        parser.add_argument(
            "--manifest",
            type=Path,
            required=True,
            help="The output manifest (UTF-8 JSON Lines, a byte-order mark allowed); a line storing more than "
            f"{MAX_STORED_BYTES // 1_000_000} MB as its item or its label is refused.",
        )
        parser.add_argument(
            "--worker-responses", type=Path, help="Directory or tar archive holding worker-response/iteration-N/..."
        )
        parser.add_argument("--label-attribute", help="The job's LabelAttributeName (default: found in the file).")
        parser.add_argument("--gold", type=Path, help="Known answers: [{ImageId, Label}] or {id: label} JSON.")
        parser.add_argument(
            "--gold-share",
            type=float,
            default=1.0,
            help="Mark this share of the known answers as gold items (stable choice); the rest only "
            "measure accuracy. Default 1.",
        )
        parser.add_argument(
            "--consolidated-as",
            choices=CONSOLIDATED_CHOICES,
            default="auto",
            help="Bounding-box jobs: keep Ground Truth's boxes as its label only, or also as gold (of --gold-share "
            "of the images) or as the answers of a 'groundtruth-consolidated' annotator. Default auto: the "
            "annotator when no worker responses are given, else the label only.",
        )
        parser.add_argument(
            "--book-costs",
            action="store_true",
            help="Book the history's Ground Truth costs in the ledger: the service charge per labeled object "
            "(GROUNDTRUTH_OBJECT_PRICE_TIERS), dated when each object was labeled. A job run from here as a "
            "labeling job books its costs anyway.",
        )
        parser.add_argument(
            "--task-price",
            type=_price,
            help="With --book-costs: the public workforce's price per task in USD (e.g. 0.036), booked for every "
            "worker response, dated at its submission.",
        )
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        manifest: Path = options["manifest"]
        if not manifest.is_file():
            raise CommandError(f"{manifest} is not a readable file.", returncode=2)
        job = None
        if options["job"] is not None:
            job = Job.objects.filter(pk=options["job"]).first()
            if job is None:
                raise CommandError(f"There is no job with id {options['job']}.", returncode=2)
        share = options["gold_share"]
        if not 0.0 <= share <= 1.0:
            raise CommandError("--gold-share must be between 0 and 1.", returncode=2)
        manifest_text = _read_text(manifest, "--manifest")
        gold_text = _read_text(options["gold"], "--gold") if options["gold"] else None
        try:
            truth = parse_gold_file(gold_text) if gold_text is not None else {}
            responses = []
            if options["worker_responses"] is not None:
                location: Path = options["worker_responses"]
                if not location.exists():
                    raise CommandError(f"{location} does not exist.", returncode=2)
                try:
                    responses = read_worker_responses(iter_worker_response_files(location))
                except UnicodeDecodeError:
                    raise CommandError(
                        f"--worker-responses {location} holds a file that is not UTF-8 text.", returncode=2
                    ) from None
                except OSError as exc:
                    raise CommandError(
                        f"--worker-responses {location} cannot be read ({exc.strerror or exc}).", returncode=2
                    ) from None
            result = import_groundtruth_output(
                manifest_text=manifest_text,
                responses=responses,
                actor=Actor.system("import_groundtruth command"),
                job=job,
                new_job_name=options["new_job"],
                label_attribute=options["label_attribute"],
                gold={k: v for k, v in truth.items() if _in_share(k, share)},
                source=str(manifest),
                consolidated_as=options["consolidated_as"],
                gold_share=share,
                history_costs=options["book_costs"],
                task_price=options["task_price"],
            )
        except (ServiceError, GroundTruthFormatError, UnicodeDecodeError, OSError) as exc:
            raise CommandError(str(exc).rstrip(".") + ".", returncode=2) from exc
        output = result.as_json()
        if truth:
            imported = Job.objects.get(pk=result.job)
            output["accuracy"] = compare_consensus_with_groundtruth(job=imported, truth=truth).as_json()
        if options["json"]:
            self.stdout.write(json.dumps(output, indent=2))
            return
        self.stdout.write(
            f"Job {result.job}{' (new)' if result.job_created else ''}: {result.items_created} new item(s) "
            f"({result.items_unchanged} unchanged), {result.assignments_created} new assignment(s) "
            f"({result.assignments_unchanged} unchanged) from {result.workers_total} worker(s), "
            f"{result.gt_labels_created} new Ground Truth label(s) ({result.gt_labels_unchanged} unchanged)."
        )
        if result.costs_booked:
            self.stdout.write(f"Booked {result.costs_booked} new cost row(s) in the ledger.")
        for warning in result.warnings:
            self.stdout.write(f"Warning: {warning}")
        if "accuracy" in output:
            acc = output["accuracy"]
            self.stdout.write(
                f"Accuracy on {acc['items_evaluated']} non-gold item(s) with known answers: "
                f"ours {acc['ours']:.2%}, Ground Truth's {acc['groundtruth']:.2%}."
            )
