"""Read-only queries over Ground Truth results: our consensus against Ground Truth's, on known answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from tasks.models import ConsensusLabel, GroundTruthLabel, Job


@dataclass(frozen=True)
class AccuracyComparison:
    items: int
    ours_right: int
    groundtruth_right: int

    @property
    def ours(self) -> float:
        return self.ours_right / self.items if self.items else 0.0

    @property
    def groundtruth(self) -> float:
        return self.groundtruth_right / self.items if self.items else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "items_evaluated": self.items,
            "ours": round(self.ours, 4),
            "groundtruth": round(self.groundtruth, 4),
            "ours_right": self.ours_right,
            "groundtruth_right": self.groundtruth_right,
        }


def _truth_key(payload: Mapping[str, Any], external_id: str, truth: Mapping[str, Any]) -> Any:
    ref = payload.get("source-ref")
    keys = [external_id]
    if isinstance(ref, str):
        name = PurePosixPath(ref).name
        keys += [ref, name, name.rsplit(".", 1)[0]]
    return next((truth[k] for k in keys if k in truth), None)


def compare_consensus_with_groundtruth(*, job: Job, truth: Mapping[str, Any]) -> AccuracyComparison:
    """Accuracy of our consensus and of Ground Truth's label on the job's non-gold items that have both
    and a known answer in ``truth`` (keyed like the import's gold file)."""
    ours = dict(ConsensusLabel.objects.filter(job=job).values_list("item_id", "value"))
    theirs = dict(GroundTruthLabel.objects.filter(job=job).values_list("item_id", "value"))
    items = job.items.filter(is_gold=False, id__in=set(ours) & set(theirs)).values_list("id", "external_id", "payload")
    n = ours_right = gt_right = 0
    for item_id, external_id, payload in items:
        known = _truth_key(payload, external_id, truth)
        if known is None:
            continue
        n += 1
        ours_right += ours[item_id] == known
        gt_right += theirs[item_id] == known
    return AccuracyComparison(n, ours_right, gt_right)
