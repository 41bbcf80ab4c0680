"""Reads for the quality policies: the evidence the block decision weighs.

The block policy weighs two kinds of evidence, each a log-likelihood ratio between "the worker's answers
do not depend on the item" and "the worker is at least as reliable as the job's honest floor":

- gold: the worker's graded gold answers, each against its own chance of matching the gold answer from
  the worker's own label mix;
- peers: on ordinary items, how often the worker's answer matches the other workers' answers on the same
  items, each item against its own chance of matching from the worker's label mix. Peers answer every
  item ``redundancy`` times, so this evidence grows with every task, not only with gold. A peer's own
  noise is allowed for: the alternative's agreement uses the other workers' pooled gold accuracy as the
  peers' reliability.

Single-label jobs only; multi-label jobs keep the gold test against a uniform chance rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models import Avg, Count

from tasks.models import Answer, AssignmentState, GoldGrade, Job
from workforce.models import Worker
from workforce.scoring import PRIOR_RIGHT, PRIOR_WRONG, dependence_log_ratio, floor_kappa, label_mix

# Answers that still count: returned (a blocked worker's) and rejected assignments' answers do not.
COUNTED_STATES = (AssignmentState.SUBMITTED, AssignmentState.APPROVED)
# The peer evidence reads at most this many of the worker's latest ordinary answers (bounded cost).
PEER_WINDOW = 200


@dataclass(frozen=True)
class DependenceEvidence:
    gold_log_ratio: float
    gold_chance: float  # expected right gold answers under the null
    peer_log_ratio: float
    peer_items: int
    peer_matched: float
    peer_chance: float
    peer_reliability: float

    @property
    def log_ratio(self) -> float:
        return self.gold_log_ratio + self.peer_log_ratio

    def as_dict(self) -> dict[str, Any]:
        return {
            "gold_log_ratio": round(self.gold_log_ratio, 4),
            "gold_chance_right": round(self.gold_chance, 4),
            "peer_log_ratio": round(self.peer_log_ratio, 4),
            "peer_items": self.peer_items,
            "peer_agreement": round(self.peer_matched / self.peer_items, 4) if self.peer_items else None,
            "peer_chance_agreement": round(self.peer_chance / self.peer_items, 4) if self.peer_items else None,
            "peer_reliability": round(self.peer_reliability, 4),
        }


def _key(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def get_dependence_evidence(*, job: Job, worker: Worker) -> DependenceEvidence | None:
    """The worker's gold and peer evidence on a single-label ``job`` with a block floor (else None)."""
    if job.is_multilabel or job.block_below_accuracy is None:
        return None
    labels = [str(label) for label in job.labels]
    kappa = floor_kappa(job.block_below_accuracy, len(labels))
    own = Answer.objects.filter(job=job, worker=worker, assignment__state__in=COUNTED_STATES)
    counts: dict[str, float] = {}
    for value, n in own.values_list("value").annotate(n=Count("id")).order_by():
        counts[_key(value)] = counts.get(_key(value), 0.0) + float(n)
    mix = label_mix(counts, labels)

    grades = list(GoldGrade.objects.filter(job=job, worker=worker).values_list("score", "item__gold_answer"))
    gold_matched = np.array([score for score, _ in grades], dtype=float)
    gold_chances = np.array([mix.get(_key(answer), 0.0) for _, answer in grades], dtype=float)
    gold_llr = dependence_log_ratio(gold_matched, gold_chances, kappa=kappa)

    mine = dict(own.filter(item__is_gold=False).order_by("-id").values_list("item_id", "value")[:PEER_WINDOW])
    peers: dict[int, list[str]] = {}
    for item_id, value in (
        Answer.objects.filter(item_id__in=list(mine), assignment__state__in=COUNTED_STATES)
        .exclude(worker=worker)
        .values_list("item_id", "value")
    ):
        peers.setdefault(item_id, []).append(_key(value))
    # Per item: the share of the peers' answers the worker's answer matched, and the chance of that share.
    matched = np.array(
        [sum(v == _key(mine[item_id]) for v in values) / len(values) for item_id, values in peers.items()], dtype=float
    )
    chance = np.array([sum(mix.get(v, 0.0) for v in values) / len(values) for values in peers.values()], dtype=float)
    pooled = GoldGrade.objects.filter(job=job).exclude(worker=worker).aggregate(mean=Avg("score"), n=Count("id"))
    n_pooled = int(pooled["n"] or 0)
    peer_accuracy = (PRIOR_RIGHT + float(pooled["mean"] or 0.0) * n_pooled) / (PRIOR_RIGHT + PRIOR_WRONG + n_pooled)
    reliability = floor_kappa(peer_accuracy, len(labels))
    peer_llr = dependence_log_ratio(matched, chance, kappa=kappa * reliability)
    return DependenceEvidence(
        gold_llr,
        float(gold_chances.sum()),
        peer_llr,
        len(peers),
        float(matched.sum()),
        float(chance.sum()),
        reliability,
    )
