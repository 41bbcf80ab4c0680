"""Where the real Ground Truth files are (``shared/`` beside the checkout (CI) or the workplace's copy), and
what a job's imported labels are, as ``book_groundtruth_costs`` takes them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.models import GroundTruthLabel, Job

_ROOT = Path(__file__).resolve().parents[3]
_CANDIDATES = (_ROOT.parent / "shared" / "data" / "groundtruth", Path("/work/shared/data/groundtruth"))
DATA = next((p for p in _CANDIDATES if p.is_dir()), _CANDIDATES[0])

IC_MANIFEST = DATA / "sme_ic_output.manifest"
IC_ARCHIVE = DATA / "sme_ic_data.tar.gz"
IC_TRUTH = DATA / "sme_ic_true_labels.json"
BBOX_MANIFEST = DATA / "sme_yolov5_bbox_sample_output.manifest"
SEMSEG_MANIFEST = DATA / "l4v_semseg_output.manifest"
CUSTOM_MANIFEST = DATA / "legal_entity_custom_output.manifest"


def labeled_objects(job: Job) -> list[tuple[str, Any]]:
    """Every object of ``job`` with a Ground Truth label: (item external id, label metadata), in item order."""
    return list(
        GroundTruthLabel.objects.filter(job=job).order_by("item_id").values_list("item__external_id", "metadata")
    )
