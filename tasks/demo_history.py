"""A demo job that simulated crowd workers have already worked, through the real services.

``make run`` shows an empty pool otherwise: no progress, no charts, no scores, no costs. This job is
published with hidden gold, a block policy and a budget, then worked by simulated workers of known
accuracy (one of them a spammer who always gives the same label) over the last day: every lease,
answer, gold grade, block, flag, approval and ledger row goes through the same services as live work, so
every dashboard, report and audit trail has real figures. A simulated model's predictions feed the job's
active-learning view and join the consensus as one more annotator. The last hours' work and what gold flagged wait
for a reviewer; about a quarter of the work is left open, so the demo's own crowd workers can take the rest.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from tasks.demo_data import shape_items_with_truth
from tasks.models import Assignment, AssignmentState, GoldMissAction, Job, TaskKind
from tasks.services.collection import submit_assignment
from tasks.services.consensus import compute_consensus
from tasks.services.errors import NoWorkAvailable, ServiceError
from tasks.services.imports import import_items
from tasks.services.jobs import configure_job, create_job
from tasks.services.pool import assign_next_hit
from tasks.services.predictions import import_predictions_from_text
from tasks.services.publishing import publish_job
from tasks.services.review_batch import approve_assignments
from workforce.audit import Actor
from workforce.models import Worker
from workforce.services import record_user_saved, register_internal_worker

NAME = "Demo (already worked): which shape is in the picture?"
LABELS = ["circle", "square", "triangle"]
ITEMS = 80
GOLD = 10
REVIEW_LAG = timedelta(hours=3)
MODEL_NAME = "demo-shapes-v1"
MODEL_ACCURACY = 0.85


@dataclass(frozen=True)
class SimulatedWorker:
    username: str
    accuracy: float  # chance of the right label; a wrong one is picked at random
    always: str | None = None  # a spammer's one label, whatever the item


CROWD = (
    SimulatedWorker("sim-ada", 0.97),
    SimulatedWorker("sim-ben", 0.94),
    SimulatedWorker("sim-chen", 0.9),
    SimulatedWorker("sim-dora", 0.86),
    SimulatedWorker("sim-emil", 0.8),
    SimulatedWorker("sim-fay", 0.72),
    SimulatedWorker("sim-spam", 0.0, always="circle"),
)


def create_worked_demo_job(*, actor: Actor, created_by: Any, seed: int = 5) -> Job | None:
    """Create, publish and partly work the demo job; None when it exists already (the demo is re-runnable)."""
    if Job.objects.filter(name=NAME).exists():
        return None
    rng = random.Random(seed)
    job = create_job(
        name=NAME,
        task_kind=TaskKind.IMAGE_CLASSIFICATION,
        labels=LABELS,
        description="The shape pictures again, worked by a simulated crowd yesterday: see its dashboards.",
        instructions="Pick the one shape in the picture. Ignore the small grey dots: they are noise.",
        reward=Decimal("0.02"),
        redundancy=3,
        actor=actor,
        created_by=created_by,
    )
    job.gold_rate = 0.15
    job.block_below_accuracy = 0.6
    job.block_after_gold = 4
    job.gold_boost_rate = 0.4  # new workers see more gold until the block policy has made up its mind
    job.gold_boost_until = 8
    job.gold_miss_action = GoldMissAction.FLAG  # a reviewer sees the assignments whose gold was all wrong
    job.budget_cap = Decimal("10.00")
    job.consensus_method = "ds"
    configure_job(job=job, actor=actor)
    pictures = shape_items_with_truth(ITEMS + GOLD, seed=seed)
    truth = {row["external_id"]: shape for row, shape in pictures}
    rows = "\n".join(
        json.dumps(row | ({"gold": shape} if n >= ITEMS else {})) for n, (row, shape) in enumerate(pictures)
    )
    import_items(job=job, stream=io.StringIO(rows), filename="demo-worked.jsonl", actor=actor)
    _import_model_predictions(job, truth, pictures[:ITEMS], rng, actor)
    job = publish_job(job=job, actor=actor)
    workers = [_worker(sim, actor) for sim in CROWD]
    _work(job, workers, truth, rng, until=0.75)
    # Reviewers have approved what came in before the last REVIEW_LAG, except what gold flagged; the rest waits.
    reviewed = Assignment.objects.filter(
        job=job, state=AssignmentState.SUBMITTED, submitted_at__lt=timezone.now() - REVIEW_LAG
    ).exclude(flags__isnull=False)
    approve_assignments(job=job, actor=actor, assignment_ids=list(reviewed.values_list("pk", flat=True)))
    compute_consensus(job=job, actor=actor)
    return job


def _import_model_predictions(
    job: Job, truth: dict[str, str], pictures: list[tuple[dict[str, str], str]], rng: random.Random, actor: Actor
) -> None:
    """A simulated image model's labels and scores for the ordinary items (right about 85% of the time, less
    sure when wrong), so the job's active-learning view has uncertain and disagreeing items to show."""
    lines = ["external_id,label,score"]
    for row, _shape in pictures:
        right = truth[row["external_id"]]
        if rng.random() < MODEL_ACCURACY:
            label, score = right, rng.uniform(0.6, 0.99)
        else:
            label, score = rng.choice([x for x in LABELS if x != right]), rng.uniform(0.35, 0.7)
        lines.append(f"{row['external_id']},{label},{score:.3f}")
    import_predictions_from_text(
        job=job, text="\n".join(lines), filename="demo-model.csv", model_name=MODEL_NAME, actor=actor
    )


def _worker(sim: SimulatedWorker, actor: Actor) -> Worker:
    user, created = get_user_model().objects.get_or_create(username=sim.username)
    if created:
        user.set_unusable_password()  # a simulated worker never logs in
        user.save(update_fields=["password"])
        record_user_saved(user=user, actor=actor, created=True, before=None)
    return register_internal_worker(user=user, actor=actor, display_name=sim.username)


def _work(job: Job, workers: list[Worker], truth: dict[str, str], rng: random.Random, *, until: float) -> None:
    """Workers take turns at random over the last 20 hours until ``until`` of the answers wanted are in."""
    wanted = int(job.hits.filter(is_gold=False).count() * job.redundancy * until)
    sims = dict(zip((w.pk for w in workers), CROWD, strict=True))
    start, span = timezone.now() - timedelta(hours=20), timedelta(hours=19)
    done = 0
    idle: set[int] = set()
    while done < wanted and len(idle) < len(workers):
        worker = rng.choice([w for w in workers if w.pk not in idle])
        worker.refresh_from_db(fields=["is_blocked"])
        clock = start + span * (done / max(wanted, 1)) + timedelta(minutes=rng.uniform(0, 5))  # ends an hour ago
        try:
            lease = assign_next_hit(job=job, worker=worker, now=clock, rng=rng)
        except (NoWorkAvailable, ServiceError):  # nothing left for them, or the block policy stopped them
            idle.add(worker.pk)
            continue
        answers = {
            item_id: _answer(sims[worker.pk], truth[external_id], rng)
            for item_id, external_id in lease.hit.items.values_list("id", "external_id")
        }
        try:
            submit_assignment(assignment=lease, worker=worker, answers=answers, now=clock + timedelta(seconds=40))
        except ServiceError:
            idle.add(worker.pk)
            continue
        done += 0 if lease.hit.is_gold else 1


def _answer(sim: SimulatedWorker, right: str, rng: random.Random) -> str:
    if sim.always is not None:
        return sim.always
    if rng.random() < sim.accuracy:
        return right
    return rng.choice([label for label in LABELS if label != right])


TEST_NAME = "Demo: shapes, the basics"


def create_demo_qualification_test(*, actor: Actor, created_by: Any) -> None:
    """A short qualification test the demo's workers can take (no demo job requires it, so nobody is locked
    out); a no-op when it exists."""
    from qualification.models import QualificationTest
    from qualification.services import create_test
    from qualification.specs import QuestionSpec

    if QualificationTest.objects.filter(name=TEST_NAME).exists():
        return
    questions = [
        QuestionSpec(
            identifier=f"q{n}",
            prompt="Which shape is in the picture? Ignore the small grey dots.",
            payload={"image_url": item["image_url"]},
            accepted=(shape,),
        )
        for n, (item, shape) in enumerate(shape_items_with_truth(4, seed=99), start=1)
    ]
    create_test(
        actor=actor,
        name=TEST_NAME,
        questions=questions,
        created_by=created_by,
        description="Four pictures: pick the shape in each. Three right out of four passes.",
        task_kind="image_classification",
        labels=LABELS,
        pass_score=75,
        time_limit=timedelta(minutes=5),
        retry_delay=timedelta(minutes=1),
    )
