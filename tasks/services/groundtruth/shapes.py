"""Ground Truth bounding-box jobs as our ``image_boxes`` kind: item payloads with the image's size, Ground
Truth's consolidated boxes in our shapes format (``GroundTruthLabel.value``, gold answers, or the answers
of a ``groundtruth-consolidated`` annotator) and the workers' own boxes as their answers.

``consolidated_as`` (an import's choice for the consolidated boxes):
- ``label``: kept in ``GroundTruthLabel`` only;
- ``gold``: also the known answer of (a stable ``gold_share`` of) the items, grading the workers' boxes;
- ``annotator``: also one annotator's answers, so our box consensus (and COCO export) has them to work on;
- ``auto``: ``annotator`` for a box job imported without worker responses, else ``label``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from typing import Any

from django.utils import timezone

from tasks.models import SHAPE_KINDS, AssignmentState, Item, Job, TaskKind
from tasks.services.errors import ServiceError, SubmissionRefused
from tasks.services.external_work import ExternalAssignment
from tasks.services.groundtruth.costs import CONSOLIDATED_WORKER
from workforce.marketplaces.groundtruth.boxes import (
    OBJECT_DETECTION,
    bounding_box_answer,
    consolidated_boxes,
    image_size,
    worker_boxes,
)
from workforce.marketplaces.groundtruth.formats import (
    GroundTruthFormatError,
    Manifest,
    ManifestLine,
    WorkerResponse,
    consolidated_value,
)

SHAPE_TASK_KINDS = {OBJECT_DETECTION: TaskKind.IMAGE_BOXES}
CONSOLIDATED_CHOICES = ("auto", "label", "gold", "annotator")


def in_share(key: str, share: float) -> bool:
    """A stable pseudo-random choice of about ``share`` of the keys."""
    if share >= 1.0:
        return True
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share


def is_box_line(line: ManifestLine) -> bool:
    return line.has_label and line.task_type == OBJECT_DETECTION


def shape_payload(line: ManifestLine) -> dict[str, Any]:
    """An image item: ``image_url`` from the source-ref and ``width``/``height`` from the label's image size."""
    payload = dict(line.inputs)
    payload["image_url"] = line.source_ref or line.source
    size = image_size(line.label) if line.has_label else None
    if size is not None:
        payload["width"], payload["height"] = size
    return payload


def _boxes(line: ManifestLine) -> list[dict[str, Any]]:
    try:
        return consolidated_boxes(line.label, line.metadata, where=f"line {line.dataset_object_id + 1}")
    except GroundTruthFormatError as exc:
        raise ServiceError(f"The manifest's boxes cannot be read: {exc}.") from exc


def label_value(line: ManifestLine) -> Any:
    """``GroundTruthLabel.value``: boxes as ``{"shapes": [...]}`` (with confidence); other types as before."""
    return {"shapes": _boxes(line)} if is_box_line(line) else consolidated_value(line)


def plain_shapes(line: ManifestLine) -> dict[str, Any]:
    """The consolidated boxes without their confidence: a drawing as a worker would submit it."""
    return {"shapes": [{"label": s["label"], "box": s["box"]} for s in _boxes(line)]}


def consolidated_gold(manifest: Manifest, share: float) -> dict[str, Any]:
    """Known answers (keyed by object id) from the consolidated boxes of ``share`` of the lines."""
    return {
        str(line.dataset_object_id): plain_shapes(line)
        for line in manifest.lines
        if is_box_line(line) and in_share(str(line.dataset_object_id), share)
    }


def check_gold(job: Job, external_id: str, known: Any, payload: Mapping[str, Any]) -> None:
    from tasks.services.collection import validate_value

    try:
        validate_value(job, known, payload)
    except SubmissionRefused as exc:
        raise ServiceError(f"The known answer of object {external_id} is not a valid drawing: {exc}") from exc


def box_labels(manifest: Manifest, responses: list[WorkerResponse]) -> list[str]:
    """Class names of a box job: the class-maps first, then any other name the boxes or workers use."""
    labels = list(manifest.class_names)
    names = [s["label"] for line in manifest.lines if is_box_line(line) for s in _boxes(line)]
    for response in responses:
        answer = bounding_box_answer(response.answer_content) or {}
        names += [b.get("label") for b in answer.get("boundingBoxes", []) if isinstance(b, dict)]
    for name in names:
        if isinstance(name, str) and name not in labels:
            labels.append(name)
    return labels


def worker_answer(job: Job, response: WorkerResponse, size: tuple[float, float] | None) -> Any:
    """A worker's bounding boxes as a drawing of our shapes (scaled to the item's image size)."""
    if job.task_kind not in SHAPE_KINDS:
        raise ServiceError(f"{response.path} holds boxes but job {job.pk} is not a box job.")
    from tasks.services.shapes import validate_shapes  # numpy only where drawings are imported

    try:
        drawing = {"shapes": worker_boxes(response.answer_content, size, response.path)}
    except GroundTruthFormatError as exc:
        raise ServiceError(f"A worker response cannot be read: {exc}.") from exc
    labels = [str(label) for label in job.labels]
    try:  # checked here, where the image's size is known
        return validate_shapes(job.task_kind, labels, drawing, size or (math.inf, math.inf))
    except SubmissionRefused as exc:
        raise ServiceError(f"{response.path} ({response.worker_id}): {exc}") from exc


def consolidated_records(
    manifest: Manifest, job: Job, item_ids: Mapping[int, str], *, hit_id: Any, assignment_id: Any
) -> list[ExternalAssignment]:
    """The consolidated boxes as the answers of one annotator, ``groundtruth-consolidated``: approved work,
    as every imported answer is (Ground Truth has no review step), that costs nothing."""
    now = timezone.now()
    return [
        ExternalAssignment(
            external_assignment_id=assignment_id(
                manifest.labeling_job_name, line.dataset_object_id, CONSOLIDATED_WORKER
            ),
            external_hit_id=hit_id(manifest.labeling_job_name, line.dataset_object_id),
            external_worker_id=CONSOLIDATED_WORKER,
            answers={item_ids[line.dataset_object_id]: plain_shapes(line)},
            state=AssignmentState.APPROVED,
            submitted_at=now,
            reviewed_at=now,
            reward=job.reward,
        )
        for line in manifest.lines
        if is_box_line(line)
    ]


def object_sizes(job: Job, manifest: Manifest, objects: Mapping[int, str]) -> dict[int, tuple[float, float] | None]:
    """Each object's image size: its item's ``width``/``height`` (items published from a box job have them
    before Ground Truth's label exists), else the label's ``image_size``."""
    from tasks.services.shapes import image_size as payload_size

    payloads = dict(
        Item.objects.filter(job=job, external_id__in=set(objects.values())).values_list("external_id", "payload")
    )
    sizes: dict[int, tuple[float, float] | None] = {}
    for line in manifest.lines:
        size = payload_size(payloads.get(objects[line.dataset_object_id]) or {})
        label_size = image_size(line.label) if line.has_label else None
        sizes[line.dataset_object_id] = size or (
            (float(label_size[0]), float(label_size[1])) if label_size is not None else None
        )
    return sizes
