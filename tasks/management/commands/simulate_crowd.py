"""python manage.py simulate_crowd [--job JOB | --items N --classes C --redundancy R] --workers N ...

Exit code 2 with one sentence on bad input, before anything is written. A run that fails part way writes
nothing; an adaptive job's run commits answer by answer instead, as its allocation passes need committed work.
"""

from __future__ import annotations

import json
import math
from contextlib import nullcontext
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from tasks.models import Job, JobState
from tasks.models.core import SHAPE_KINDS
from tasks.services.errors import ServiceError
from tasks.services.simulation import BLOCK_POLICIES, create_simulation_job, simulate_crowd

# Upper bounds of the sizes: each simulated worker holds a classes x classes confusion matrix, and a
# created job's items are imported in one go.
LIMITS = {"items": 1_000_000, "classes": 100, "redundancy": 50, "workers": 1_000}
MAX_SEED = 2**63 - 1


class Command(BaseCommand):
    help = (
        "Simulated workers (reliable, noisy, spammers) work a job through the same services as the worker "
        "pages. Without --job, a job of --items items is created and published first."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--job", type=int, help="Work this published job.")
        parser.add_argument("--items", type=int, default=200)
        parser.add_argument("--classes", type=int, default=3)
        parser.add_argument("--redundancy", type=int, default=3)
        parser.add_argument("--items-per-hit", type=int, default=1, help="Items on each page of a created job (1-100).")
        parser.add_argument("--workers", type=int, default=20)
        parser.add_argument("--spammers", type=int, default=0)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--gold-rate", type=float, default=0.0, help="Share of hidden gold questions (0-0.5).")
        parser.add_argument("--block-policy", choices=sorted(BLOCK_POLICIES), default="none")
        parser.add_argument("--reward", default="0.02", help="Pay per assignment of a created job (e.g. 0.05).")
        parser.add_argument(
            "--adaptive",
            default="",
            help="Adaptive redundancy for a created job: MIN,MAX,TARGET answers per item, e.g. 2,5,0.95.",
        )
        parser.add_argument("--max-seconds", type=float, default=None, help="Stop after this long.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")

    def handle(self, *args: Any, **o: Any) -> None:
        for name in ("items", "classes", "redundancy", "workers"):
            if o[name] < 1:
                raise CommandError(f"--{name} must be at least 1.", returncode=2)
            if o[name] > LIMITS[name]:
                raise CommandError(f"--{name} must be at most {LIMITS[name]}.", returncode=2)
        if not 0 <= o["seed"] <= MAX_SEED:
            raise CommandError(f"--seed must be between 0 and {MAX_SEED}.", returncode=2)
        if o["max_seconds"] is not None and not (math.isfinite(o["max_seconds"]) and o["max_seconds"] > 0):
            raise CommandError("--max-seconds must be a positive number of seconds.", returncode=2)
        if not 1 <= o["items_per_hit"] <= 100:
            raise CommandError("--items-per-hit must be between 1 and 100.", returncode=2)
        if o["classes"] < 2:
            raise CommandError("--classes must be at least 2.", returncode=2)
        if not 0 <= o["gold_rate"] <= 0.5:
            raise CommandError("--gold-rate must be between 0 and 0.5.", returncode=2)
        if not 0 <= o["spammers"] <= o["workers"]:
            raise CommandError("--spammers must be between 0 and --workers.", returncode=2)
        try:
            reward = Decimal(o["reward"])
        except InvalidOperation:
            reward = Decimal("NaN")
        if not reward.is_finite() or reward < 0:
            raise CommandError("--reward must be a non-negative amount, e.g. 0.05.", returncode=2)
        adaptive = _adaptive(o["adaptive"])
        job = None
        if o["job"] is not None:
            job = Job.objects.filter(pk=o["job"]).first()
            if job is None:
                raise CommandError(f"There is no job with id {o['job']}.", returncode=2)
            if job.state != JobState.PUBLISHED:
                raise CommandError(f"Job {job.pk} is {job.state}; publish it first.", returncode=2)
            if job.task_kind in SHAPE_KINDS:
                raise CommandError(
                    f"Job {job.pk} asks for shapes; simulated workers only answer classification jobs.", returncode=2
                )
        # One transaction, so that a run that fails part way leaves nothing behind; an adaptive job's extra
        # answers are allocated after each commit, so its run commits as it goes (as the worker pages do).
        is_adaptive = adaptive is not None if job is None else job.is_adaptive
        try:
            with nullcontext() if is_adaptive else transaction.atomic():
                if job is None:
                    with transaction.atomic():
                        job = create_simulation_job(
                            items=o["items"],
                            classes=o["classes"],
                            redundancy=o["redundancy"],
                            items_per_hit=o["items_per_hit"],
                            seed=o["seed"],
                            gold_rate=o["gold_rate"],
                            block_policy=o["block_policy"],
                            reward=reward,
                            adaptive=adaptive,
                        )
                result = simulate_crowd(
                    job=job,
                    workers=o["workers"],
                    spammers=o["spammers"],
                    seed=o["seed"],
                    max_seconds=o["max_seconds"],
                )
        except ServiceError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        if o["json"]:
            self.stdout.write(json.dumps(result.as_dict()))
        else:
            self.stdout.write(
                f"Job {result.job}: {result.answers_submitted} answers in {result.assignments_submitted} assignments "
                f"from {result.workers} workers ({result.spammers} spammers); {result.items_complete}/{result.items} "
                f"items complete; majority-vote accuracy {result.majority_accuracy}; {result.seconds:.1f} s."
            )


def _adaptive(text: str) -> tuple[int, int, float] | None:
    if not text:
        return None
    try:
        lo, hi, target = text.split(",")
        parsed = int(lo), int(hi), float(target)
    except ValueError:
        raise CommandError("--adaptive must be MIN,MAX,TARGET, e.g. 2,5,0.95.", returncode=2) from None
    if not 1 <= parsed[0] <= parsed[1] <= 50 or not 0.5 < parsed[2] < 1:
        raise CommandError("--adaptive needs 1 <= MIN <= MAX <= 50 and 0.5 < TARGET < 1.", returncode=2)
    return parsed
