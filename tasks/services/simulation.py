"""A crowd simulator that works a job through the same services the worker pages use.

Each simulated worker has a confusion matrix: reliable workers are mostly right, noisy ones often
wrong, spammers answer uniformly at random or always the same label. Items get a latent true label
drawn from the seed and the item's id, so the same seed gives the same run.
"""

from __future__ import annotations

import hashlib
import io
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import numpy as np
from django.utils import timezone

from tasks.models import Answer, GoldGrade, HitItem, HitState, Job, JobBlock, JobState, TaskKind
from tasks.selectors import list_page_items
from tasks.services.collection import submit_assignment
from tasks.services.errors import NoWorkAvailable
from tasks.services.imports import import_items
from tasks.services.jobs import create_job
from tasks.services.pool import assign_next_hit
from tasks.services.publishing import publish_job
from workforce.audit import Actor
from workforce.models import Marketplace, Worker
from workforce.services import get_or_create_workers

ACTOR = Actor.system("crowd simulator")
# ``--block-policy default``: block a worker once their gold answers and their agreement with other
# workers are together 50 times likelier from someone whose answers ignore the item than from someone at
# 60% accuracy (after at least 3 gold answers; see ``tasks.services.quality._block_decision``); while the
# gold test alone is undecided about a worker, half their tasks are gold (for at most 40 gold answers).
BLOCK_POLICIES: dict[str, dict[str, Any]] = {
    "none": {"block_below_accuracy": None},
    "default": {"block_below_accuracy": 0.6, "block_after_gold": 3, "gold_boost_rate": 0.5, "gold_boost_until": 40},
}


@dataclass
class SimulatedWorker:
    worker: Worker
    kind: str  # reliable | noisy | spammer-random | spammer-constant
    confusion: np.ndarray  # classes x classes, rows sum to 1


@dataclass
class SimulationResult:
    job: int
    workers: int
    spammers: int
    answers_submitted: int = 0
    assignments_submitted: int = 0
    items_complete: int = 0
    items: int = 0
    majority_accuracy: float | None = None
    seconds: float = 0.0
    by_kind: dict[str, int] = field(default_factory=dict)
    gold_items: int = 0
    gold_answers: int = 0
    spammers_blocked: int = 0
    honest_blocked: int = 0
    gold_answers_per_block: float | None = None
    accuracy_before_exclusion: float | None = None
    accuracy_after_exclusion: float | None = None
    approved_assignments: int = 0
    rejected_assignments: int = 0
    labels: int = 0
    total_cost: str = "0"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _latent_label(seed: int, external_id: str, n_classes: int) -> int:
    digest = hashlib.sha256(f"{seed}:{external_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % n_classes


def _confusion(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "spammer-random":
        return np.full((n, n), 1.0 / n)
    if kind == "spammer-constant":
        m = np.zeros((n, n))
        m[:, int(rng.integers(n))] = 1.0
        return m
    accuracy = rng.uniform(0.85, 0.97) if kind == "reliable" else rng.uniform(0.55, 0.75)
    m = np.empty((n, n))
    for true in range(n):
        off = rng.dirichlet(np.ones(n - 1)) * (1 - accuracy) if n > 1 else np.array([])
        m[true] = np.insert(off, true, accuracy)
    return m


def _make_workers(
    count: int, spammers: int, n_classes: int, seed: int, rng: np.random.Generator
) -> list[SimulatedWorker]:
    ids = [f"sim-{seed}-{i:04d}" for i in range(count)]
    workers = get_or_create_workers(marketplace=Marketplace.INTERNAL, external_ids=ids)
    honest = count - spammers
    kinds = ["reliable" if i < max(1, round(honest * 0.7)) else "noisy" for i in range(honest)]
    kinds += ["spammer-random" if i % 2 == 0 else "spammer-constant" for i in range(spammers)]
    return [
        SimulatedWorker(workers[eid], kind, _confusion(kind, n_classes, rng))
        for eid, kind in zip(ids, kinds, strict=True)
    ]


def create_simulation_job(
    *,
    items: int,
    classes: int,
    redundancy: int,
    seed: int,
    gold_rate: float = 0.0,
    block_policy: str = "none",
    reward: Decimal = Decimal("0.02"),
    adaptive: tuple[int, int, float] | None = None,
    items_per_hit: int = 1,
) -> Job:
    labels = [f"class_{i}" for i in range(classes)]
    job = create_job(
        name=f"Simulated job (seed {seed}, {items} items)",
        task_kind=TaskKind.TEXT_CLASSIFICATION,
        labels=labels,
        redundancy=redundancy,
        reward=reward,
        instructions="Pick the class the text describes.",
        actor=ACTOR,
    )
    # Simulated work is reviewed as soon as the crowd is done (see ``simulate_crowd``).
    Job.objects.filter(pk=job.pk).update(
        gold_rate=gold_rate,
        items_per_hit=items_per_hit,
        auto_approve_after=timedelta(0),
        **BLOCK_POLICIES[block_policy],
    )
    if adaptive is not None:  # adaptive redundancy: (min answers, max answers, target confidence)
        lo, hi, target = adaptive
        Job.objects.filter(pk=job.pk).update(adaptive_min_answers=lo, adaptive_max_answers=hi, adaptive_target=target)
    job.refresh_from_db()
    buf = io.StringIO()
    buf.write("external_id,text,gold\n")
    for i in range(items):
        buf.write(f"item-{i:07d},Simulated text number {i},\n")
    # Gold questions: extra items whose known answer is the simulator's truth.
    for i in range(round(items * gold_rate) if gold_rate else 0):
        external_id = f"gold-{i:06d}"
        buf.write(f"{external_id},Simulated text G{i},{labels[_latent_label(seed, external_id, classes)]}\n")
    buf.seek(0)
    import_items(job=job, stream=buf, filename="simulated.csv", actor=ACTOR)
    return publish_job(job=job, actor=ACTOR)


def simulate_crowd(
    *, job: Job, workers: int, spammers: int, seed: int, max_seconds: float | None = None
) -> SimulationResult:
    """Let ``workers`` simulated workers (``spammers`` of them spammers) work ``job`` until no work is left."""
    if spammers > workers:
        raise ValueError("There cannot be more spammers than workers.")
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    hand_out_rng = random.Random(seed)
    labels = [str(label) for label in job.labels]
    n_classes = len(labels)
    crowd = _make_workers(workers, spammers, n_classes, seed, rng)
    truth: dict[int, int] = {}
    result = SimulationResult(job=job.pk, workers=workers, spammers=spammers)
    active = list(range(len(crowd)))
    external_ids = dict(job.items.values_list("id", "external_id"))
    known = _known_gold_truth(job, labels)
    while active and job.state == JobState.PUBLISHED:
        if max_seconds is not None and time.perf_counter() - started > max_seconds:
            break
        order = rng.permutation(active)
        still: list[int] = []
        for index in order:
            sim = crowd[int(index)]
            try:
                assignment = assign_next_hit(job=job, worker=sim.worker, rng=hand_out_rng)
            except NoWorkAvailable:
                continue
            # What the worker's page shows, in order (gold placed on multi-item pages included).
            page = list_page_items(assignment)
            answers: dict[int, Any] = {}
            for item in page:
                true = truth.get(item.pk)
                if true is None:
                    true = truth[item.pk] = known.get(item.pk, _latent_label(seed, external_ids[item.pk], n_classes))
                chosen = int(rng.choice(n_classes, p=sim.confusion[true]))
                answers[item.place] = [labels[chosen]] if job.is_multilabel else labels[chosen]  # type: ignore[attr-defined]
            submit_assignment(assignment=assignment, worker=sim.worker, answers=answers, by_place=True)
            result.assignments_submitted += 1
            result.answers_submitted += len(answers)
            result.by_kind[sim.kind] = result.by_kind.get(sim.kind, 0) + 1
            still.append(int(index))
        # Adaptive Hits reopen after completing: keep every worker while anyone still found work.
        active = (active if still else []) if job.is_adaptive else still
        job.refresh_from_db(fields=["state"])
    result.items = job.items.count()
    result.items_complete = HitItem.objects.filter(hit__job=job, hit__state=HitState.COMPLETE).count()
    result.majority_accuracy = _majority_accuracy(job, truth, labels)
    _quality_figures(job, crowd, truth, labels, result)
    _review_and_label(job, result)
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def _known_gold_truth(job: Job, labels: list[str]) -> dict[int, int]:
    """The truth of gold items whose known answer is one of the job's labels (gold imported into an existing
    job: simulated workers answer it the way its gold grading expects). Other items get a latent label."""
    index = {label: n for n, label in enumerate(labels)}
    known: dict[int, int] = {}
    for item_id, answer in job.items.filter(is_gold=True).values_list("id", "gold_answer"):
        if isinstance(answer, list) and len(answer) == 1:
            answer = answer[0]
        if isinstance(answer, str) and answer in index:
            known[item_id] = index[answer]
    return known


def _review_and_label(job: Job, result: SimulationResult) -> None:
    """Auto-review the submitted work (jobs with an auto-approval delay), compute consensus, and report
    what the ledger holds for the job."""
    from django.db.models import Sum

    from tasks.models import Assignment, AssignmentState, ConsensusLabel, CostEntry
    from tasks.services.budget import exact
    from tasks.services.consensus import compute_consensus
    from tasks.services.review_batch import auto_review

    job.refresh_from_db()
    if job.auto_approve_after is not None:
        auto_review(actor=ACTOR, job=job, now=timezone.now() + job.auto_approve_after)
    if Answer.objects.filter(job=job, item__is_gold=False).exists():
        compute_consensus(job=job, actor=ACTOR)
    states = Assignment.objects.filter(job=job)
    result.approved_assignments = states.filter(state=AssignmentState.APPROVED).count()
    result.rejected_assignments = states.filter(state=AssignmentState.REJECTED).count()
    result.labels = ConsensusLabel.objects.filter(job=job).count()
    result.total_cost = str(exact(CostEntry.objects.filter(job=job).aggregate(total=Sum("amount"))["total"]))


def _quality_figures(
    job: Job, crowd: list[SimulatedWorker], truth: dict[int, int], labels: list[str], result: SimulationResult
) -> None:
    """Blocks by worker kind, and consensus accuracy against the truth with and without blocked workers."""
    kinds = {sim.worker.pk: sim.kind for sim in crowd}
    blocks = list(JobBlock.objects.filter(job=job, lifted_at__isnull=True).values_list("worker_id", "evidence"))
    spam_blocks = [evidence for worker_id, evidence in blocks if kinds.get(worker_id, "").startswith("spammer")]
    result.spammers_blocked = len(spam_blocks)
    result.honest_blocked = len(blocks) - len(spam_blocks)
    if spam_blocks:
        result.gold_answers_per_block = float(np.median([e.get("gold_answers", 0) for e in spam_blocks]))
    result.gold_items = job.items.filter(is_gold=True).count()
    result.gold_answers = GoldGrade.objects.filter(job=job).count()
    if job.is_multilabel:
        return
    rows = list(
        Answer.objects.filter(job=job, item__is_gold=False)
        .order_by("id")
        .values_list("item_id", "worker_id", "value")
        .iterator()
    )
    # Before: each item's first ``redundancy`` answers, blocked workers' included: the labels the job had
    # before the policy excluded anyone. After: blocked workers' answers dropped, the items they had
    # answered re-answered by others (the block returned them to the pool), consensus recomputed.
    blocked = {worker_id for worker_id, _ in blocks}
    seen: Counter[int] = Counter()
    first = []
    for row in rows:
        seen[row[0]] += 1
        if seen[row[0]] <= job.redundancy:
            first.append(row)
    result.accuracy_before_exclusion = _consensus_accuracy(job, first, truth, labels)
    kept = [row for row in rows if row[1] not in blocked]
    result.accuracy_after_exclusion = _consensus_accuracy(job, kept, truth, labels)


def _consensus_accuracy(
    job: Job, rows: list[tuple[int, int, Any]], truth: dict[int, int], labels: list[str]
) -> float | None:
    import pandas as pd

    from tasks.aggregation.registry import aggregate_frame

    if not rows:
        return None
    frame = pd.DataFrame(rows, columns=["task", "worker", "label"]).astype(str)
    consensus = aggregate_frame(frame, job.consensus_method)
    # Only items the simulated crowd answered have a simulated truth: an existing job's items that its
    # real workers had finished before the run are left out of the score.
    scored = [
        (int(t), label) for t, label in zip(consensus["task"], consensus["label"], strict=True) if int(t) in truth
    ]
    if not scored:
        return None
    return round(sum(labels[truth[t]] == label for t, label in scored) / len(scored), 4)


def _majority_accuracy(job: Job, truth: dict[int, int], labels: list[str]) -> float | None:
    """Share of simulated items whose plurality answer is the latent truth (ties count as wrong)."""
    if not truth or job.is_multilabel:
        return None
    votes: dict[int, Counter[str]] = {}
    for item_id, value in (
        Answer.objects.filter(job=job, item_id__in=list(truth)).values_list("item_id", "value").iterator()
    ):
        votes.setdefault(item_id, Counter())[value] += 1
    correct = 0
    for item_id, counter in votes.items():
        top = counter.most_common(2)
        if len(top) == 1 or top[0][1] > top[1][1]:
            correct += top[0][0] == labels[truth[item_id]]
    return round(correct / len(votes), 4) if votes else None
