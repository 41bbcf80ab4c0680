"""Import a Ground Truth job's output: items, Ground Truth's own labels, every worker's answers.

The whole input is parsed and checked before anything is written; then items, ``GroundTruthLabel``
rows and (through ``record_external_assignments``) workers, Hits, assignments and answers are written
in one transaction, gold is graded, and our consensus runs when anything new arrived. Importing the
same files again changes nothing.

Each dataset object is one Item (external id = its ``datasetObjectId``, the 0-based manifest line) and
one Hit (``<labeling job>/<object>``); each worker's response to it is one assignment whose external id
is ``<labeling job>/<object>/<worker id>`` (hashed when longer than our 128-character column).
Bounding-box jobs become ``image_boxes`` jobs (see ``groundtruth.shapes``: boxes in our shapes format,
for workers and for Ground Truth's consolidated label). Task types our kinds cannot express (masks,
custom tasks) still import: the job is created as the nearest classification kind, and Ground Truth's
label keeps its raw JSON in ``GroundTruthLabel``.

Ground Truth has no review step: the work in its output was accepted (and, for the public workforce, paid)
by AWS, so each worker response is recorded as an approved assignment, reviewed when it was submitted. It
counts for consensus and scores like any accepted work, waits in no reviewer's queue, and its only cost is
what ``groundtruth.costs`` books. How the manifest's text is read and what a line may store:
``groundtruth.manifest_input``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from tasks.models import SHAPE_KINDS, AssignmentState, GroundTruthLabel, Hit, Item, Job, JobState, LabelingJob, TaskKind
from tasks.services.bulk import bulk_insert
from tasks.services.consensus import compute_consensus
from tasks.services.errors import ServiceError
from tasks.services.external_work import ExternalAssignment, record_external_assignments
from tasks.services.groundtruth import shapes as gt_shapes
from tasks.services.groundtruth.costs import Pricing, book_groundtruth_costs
from tasks.services.groundtruth.manifest_input import check_stored_size, without_bom
from tasks.services.imports import payload_hash, same_content
from workforce.audit import Actor, record_audit_event
from workforce.jsonlimits import load_storable, reason
from workforce.marketplaces.groundtruth.formats import (
    GroundTruthFormatError,
    Manifest,
    ManifestLine,
    WorkerResponse,
    answer_value,
    parse_manifest,
)
from workforce.models import Marketplace

MARKETPLACE = Marketplace.GROUNDTRUTH
_ID_LIMIT = 128

# Ground Truth's task type (metadata "type") -> the kind a new job gets.
_KINDS = {
    "groundtruth/image-classification": TaskKind.IMAGE_CLASSIFICATION,
    "groundtruth/image-classification-multilabel": TaskKind.IMAGE_MULTILABEL,
    "groundtruth/text-classification": TaskKind.TEXT_CLASSIFICATION,
    "groundtruth/text-classification-multilabel": TaskKind.TEXT_MULTILABEL,
}
_CLASSIFICATION_KINDS = frozenset(_KINDS.values())
_CLASSIFICATION_TYPES = tuple(_KINDS)
_KINDS.update(gt_shapes.SHAPE_TASK_KINDS)


@dataclass
class GroundTruthImportResult:
    job: int
    job_created: bool
    labeling_job_name: str
    label_attribute: str
    task_type: str
    items_created: int = 0
    items_unchanged: int = 0
    gold_items: int = 0
    assignments_created: int = 0
    assignments_unchanged: int = 0
    answers_created: int = 0
    workers_created: int = 0
    workers_total: int = 0
    gt_labels_created: int = 0
    gt_labels_updated: int = 0
    gt_labels_unchanged: int = 0
    costs_booked: int = 0
    consensus_version: int | None = None
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "job": {"id": self.job, "created": self.job_created, "labeling_job": self.labeling_job_name},
            "items": {"created": self.items_created, "unchanged": self.items_unchanged, "gold": self.gold_items},
            "assignments": {
                "created": self.assignments_created,
                "unchanged": self.assignments_unchanged,
                "answers_created": self.answers_created,
            },
            "workers": {"created": self.workers_created, "total": self.workers_total},
            "groundtruth_consensus_labels": {
                "created": self.gt_labels_created,
                "updated": self.gt_labels_updated,
                "unchanged": self.gt_labels_unchanged,
                "label_attribute": self.label_attribute,
                "task_type": self.task_type,
            },
            "costs_booked": self.costs_booked,
            "consensus_version": self.consensus_version,
            "warnings": self.warnings,
        }


def assignment_external_id(labeling_job: str, dataset_object_id: int, worker_id: str) -> str:
    """Deterministic: the same worker's response to the same object always maps to the same id."""
    plain = f"{labeling_job}/{dataset_object_id}/{worker_id}"
    if len(plain) <= _ID_LIMIT:
        return plain
    return f"gt-{hashlib.sha256(plain.encode()).hexdigest()}"


def hit_external_id(labeling_job: str, dataset_object_id: int) -> str:
    plain = f"{labeling_job}/{dataset_object_id}"
    return plain if len(plain) <= _ID_LIMIT else f"gt-{hashlib.sha256(plain.encode()).hexdigest()}"


def _payload(job_kind: str, line: ManifestLine) -> dict[str, Any]:
    if job_kind in SHAPE_KINDS:
        return gt_shapes.shape_payload(line)
    payload = dict(line.inputs)
    if job_kind in (TaskKind.IMAGE_CLASSIFICATION, TaskKind.IMAGE_MULTILABEL):
        payload["image_url"] = line.source_ref or line.source
    else:
        payload["text"] = line.source if line.source is not None else line.source_ref
    return payload


def _gold_for(line: ManifestLine, gold: Mapping[str, Any]) -> Any:
    """A line's known answer from ``gold``, keyed by object id, source-ref, or the file's name or stem."""
    keys = [str(line.dataset_object_id)]
    if line.source_ref:
        name = PurePosixPath(line.source_ref).name
        keys += [line.source_ref, name, name.rsplit(".", 1)[0]]
    for key in keys:
        if key in gold:
            return gold[key]
    return None


def _new_job(*, name: str, manifest: Manifest, labels: list[str], actor: Actor) -> Job:
    first = next((line for line in manifest.lines), None)
    text_input = first is not None and first.source_ref is None
    fallback = TaskKind.TEXT_CLASSIFICATION if text_input else TaskKind.IMAGE_CLASSIFICATION
    kind = _KINDS.get(manifest.task_type, fallback)
    if not name.strip() or len(name) > 200:
        raise ServiceError("A new job needs a name of 1 to 200 characters.")
    job = Job.objects.create(
        name=name.strip(),
        task_kind=kind,
        labels=labels,
        marketplace=MARKETPLACE,
        consensus_method="ds",
        state=JobState.PUBLISHED,
        published_at=timezone.now(),
        description=f"Imported from Ground Truth labeling job {manifest.labeling_job_name} ({manifest.task_type}).",
    )
    record_audit_event(
        actor=actor,
        action="job.created",
        object_type="job",
        object_id=job.pk,
        after={"name": job.name, "task_kind": kind, "labels": labels, "source": "groundtruth import"},
    )
    return job


def _labels(manifest: Manifest, responses: list[WorkerResponse]) -> list[str]:
    if manifest.task_type in gt_shapes.SHAPE_TASK_KINDS:
        return gt_shapes.box_labels(manifest, responses)
    labels = list(manifest.class_names)
    for response in responses:
        value = answer_value(response.answer_content)
        for label in value if isinstance(value, list) else [value]:
            if isinstance(label, str) and label not in labels:
                labels.append(label)
    return labels


ITEM_KEY = "crowdops-item"  # set on the input manifest lines we publish: the item's external id


def item_external_id(line: ManifestLine) -> str:
    """Our item for a manifest line: the item we published it from, else its ``datasetObjectId``."""
    ours = line.inputs.get(ITEM_KEY)
    return str(ours) if isinstance(ours, str | int) else str(line.dataset_object_id)


def _write_items(
    job: Job, manifest: Manifest, gold: Mapping[str, Any], result: GroundTruthImportResult, numbers: list[int]
) -> dict[str, int]:
    existing = dict(Item.objects.filter(job=job).values_list("external_id", "payload_hash"))
    labels = {str(label) for label in job.labels}
    new: list[tuple[str, dict[str, Any], str, Any]] = []
    for line in manifest.lines:
        if ITEM_KEY in line.inputs:  # published from this job: the item exists already
            if item_external_id(line) not in existing:
                raise ServiceError(
                    f"Object {line.dataset_object_id} names item {item_external_id(line)!r}, "
                    f"which job {job.pk} does not have."
                )
            result.items_unchanged += 1
            continue
        external_id = str(line.dataset_object_id)
        payload = _payload(job.task_kind, line)
        check_stored_size("an item payload", payload, line=numbers[line.dataset_object_id])
        known = _gold_for(line, gold)
        if known is not None and job.task_kind in _CLASSIFICATION_KINDS and known not in labels:
            raise ServiceError(f"Gold label {known!r} of object {external_id} is not one of the job's labels.")
        if known is not None and job.is_shapes:
            gt_shapes.check_gold(job, external_id, known, payload)
        content = payload if known is None else {**payload, "\u0000gold": known}
        digest = payload_hash(content)
        if external_id not in existing:
            new.append((external_id, payload, digest, known))
        elif same_content(existing[external_id], content):  # whichever digest it was stored with
            result.items_unchanged += 1
        else:
            raise ServiceError(f"Item {external_id} already exists in job {job.pk} with different content.")
    now = timezone.now()
    bulk_insert(
        Item,
        ["job_id", "external_id", "payload", "payload_hash", "is_gold", "gold_answer", "created_at"],
        ((job.pk, ext, payload, digest, known is not None, known, now) for ext, payload, digest, known in new),
    )
    result.items_created = len(new)
    result.gold_items = sum(1 for row in new if row[3] is not None)
    return dict(Item.objects.filter(job=job).values_list("external_id", "id"))


def _write_gt_labels(
    job: Job, manifest: Manifest, item_ids: Mapping[str, int], result: GroundTruthImportResult, numbers: list[int]
) -> None:
    current = {
        row.item_id: row
        for row in GroundTruthLabel.objects.filter(job=job).only("id", "item_id", "raw", "metadata", "value")
    }
    now = timezone.now()
    create: list[GroundTruthLabel] = []
    update: list[GroundTruthLabel] = []
    for line in manifest.lines:
        if not line.has_label:
            continue
        stored = {manifest.label_attribute: line.label, f"{manifest.label_attribute}-metadata": line.metadata}
        check_stored_size("a Ground Truth label", stored, line=numbers[line.dataset_object_id])
        item_id = item_ids[item_external_id(line)]
        confidence = line.metadata.get("confidence")
        human = line.metadata.get("human-annotated")
        row = GroundTruthLabel(
            item_id=item_id,
            job=job,
            labeling_job_name=manifest.labeling_job_name,
            label_attribute=manifest.label_attribute,
            task_type=line.task_type,
            value=gt_shapes.label_value(line),
            raw=line.label,
            metadata=dict(line.metadata),
            confidence=float(confidence) if isinstance(confidence, int | float) else None,
            human_annotated=None if human is None else human == "yes",
            created_at=now,
        )
        old = current.get(item_id)
        if old is None:
            create.append(row)
        elif old.raw != row.raw or old.metadata != row.metadata:
            row.pk = old.pk
            update.append(row)
        else:
            result.gt_labels_unchanged += 1
    GroundTruthLabel.objects.bulk_create(create, batch_size=2000)
    fields = ["labeling_job_name", "label_attribute", "task_type", "value", "raw", "metadata", "confidence"]
    GroundTruthLabel.objects.bulk_update(update, [*fields, "human_annotated", "created_at"], batch_size=2000)
    result.gt_labels_created, result.gt_labels_updated = len(create), len(update)


def _check_not_elsewhere(job: Job, manifest: Manifest) -> None:
    """A labeling job's objects are Hits of one job only (their external ids are unique per marketplace)."""
    other = (
        Hit.objects.filter(marketplace=MARKETPLACE, external_id=hit_external_id(manifest.labeling_job_name, 0))
        .exclude(job=job)
        .values_list("job_id", flat=True)
        .first()
    )
    if other is not None:
        raise ServiceError(
            f"Labeling job {manifest.labeling_job_name} was already imported into job {other}; import it there."
        )


def _records(manifest: Manifest, responses: list[WorkerResponse], job: Job) -> list[ExternalAssignment]:
    objects = {line.dataset_object_id: item_external_id(line) for line in manifest.lines}
    sizes = gt_shapes.object_sizes(job, manifest, objects) if job.is_shapes else {}
    records: list[ExternalAssignment] = []
    now = timezone.now()
    for response in sorted(responses, key=lambda r: (r.dataset_object_id, r.iteration, r.path)):
        if response.dataset_object_id not in objects:
            raise ServiceError(
                f"{response.path} answers dataset object {response.dataset_object_id}, "
                f"which the manifest (of {len(manifest.lines)} lines) does not have."
            )
        records.append(
            ExternalAssignment(
                external_assignment_id=assignment_external_id(
                    manifest.labeling_job_name, response.dataset_object_id, response.worker_id
                ),
                external_hit_id=hit_external_id(manifest.labeling_job_name, response.dataset_object_id),
                external_worker_id=response.worker_id,
                answers={
                    objects[response.dataset_object_id]: gt_shapes.worker_answer(
                        job, response, sizes[response.dataset_object_id]
                    )
                    if job.is_shapes
                    else answer_value(response.answer_content)
                },
                state=AssignmentState.APPROVED,  # no review step: accepted by Ground Truth on submission
                accepted_at=response.accepted_at,
                submitted_at=response.submitted_at,
                reviewed_at=response.submitted_at or now,
                reward=job.reward,
            )
        )
    return records


def import_groundtruth_output(
    *,
    manifest_text: str,
    responses: Iterable[WorkerResponse],
    actor: Actor,
    job: Job | None = None,
    new_job_name: str | None = None,
    label_attribute: str | None = None,
    gold: Mapping[str, Any] | None = None,
    source: str = "",
    run_consensus: bool = True,
    require_labels: bool = True,
    labeling_job_name: str | None = None,
    consolidated_as: str = "auto",
    gold_share: float = 1.0,
    history_costs: bool = False,
    task_price: Decimal | None = None,
) -> GroundTruthImportResult:
    """Import one Ground Truth output (see the module docstring) into ``job`` or a new job; for box jobs
    ``consolidated_as`` and ``gold_share`` say where Ground Truth's own boxes go (``groundtruth.shapes``).

    A job run from here as a labeling job books its costs as its results arrive. Imported history books
    them only with ``history_costs``: the service charge per labeled object (the tier table), and with a
    ``task_price`` the public workforce's price per worker response, each row dated when the object was
    labeled or the response submitted, so a finance period holds it where the work happened."""
    if task_price is not None and (not task_price.is_finite() or task_price < 0):
        raise ServiceError("The task price must be a non-negative amount in USD, e.g. 0.036.")
    if task_price is not None and not history_costs:
        raise ServiceError("A task price is only used with the history's costs (--book-costs).")
    if (job is None) == (new_job_name is None):
        raise ServiceError("Give either an existing job or a name for a new one.")
    if consolidated_as not in gt_shapes.CONSOLIDATED_CHOICES:
        raise ServiceError(f"consolidated_as must be one of {', '.join(gt_shapes.CONSOLIDATED_CHOICES)}.")
    manifest_text = without_bom(manifest_text)
    try:
        manifest = parse_manifest(manifest_text, label_attribute=label_attribute, require_labels=require_labels)
    except GroundTruthFormatError as exc:
        raise ServiceError(f"The manifest is not a Ground Truth manifest: {exc}.") from exc
    numbers = [n for n, text in enumerate(manifest_text.splitlines(), start=1) if text.strip()]  # file lines
    if labeling_job_name:
        manifest = replace(manifest, labeling_job_name=labeling_job_name)
    responses = list(responses)
    gold = gold or {}
    boxes = manifest.task_type in gt_shapes.SHAPE_TASK_KINDS
    if consolidated_as == "auto":
        consolidated_as = "annotator" if boxes and not responses else "label"
    if consolidated_as != "label" and not boxes:
        raise ServiceError(
            "Ground Truth's labels can be gold or an annotator's answers for bounding boxes only, "
            f"not {manifest.task_type or 'this task type'}."
        )
    if consolidated_as == "gold":
        gold = {**gt_shapes.consolidated_gold(manifest, gold_share), **gold}
    try:
        with transaction.atomic():
            created = job is None
            if job is None:
                labels = _labels(manifest, responses)
                job = _new_job(name=new_job_name or "", manifest=manifest, labels=labels, actor=actor)
            elif job.state in (JobState.COMPLETED, JobState.CANCELLED):
                raise ServiceError(f"Job {job.pk} is {job.state}; Ground Truth output cannot be added to it.")
            result = GroundTruthImportResult(
                job=job.pk,
                job_created=created,
                labeling_job_name=manifest.labeling_job_name,
                label_attribute=manifest.label_attribute,
                task_type=manifest.task_type,
            )
            _check_not_elsewhere(job, manifest)
            item_ids = _write_items(job, manifest, gold, result, numbers)
            _write_gt_labels(job, manifest, item_ids, result, numbers)
            records = _records(manifest, responses, job)
            if consolidated_as == "annotator" and job.is_shapes:
                objects = {line.dataset_object_id: item_external_id(line) for line in manifest.lines}
                records += gt_shapes.consolidated_records(
                    manifest, job, objects, hit_id=hit_external_id, assignment_id=assignment_external_id
                )
            classification = job.task_kind in _CLASSIFICATION_KINDS and manifest.task_type in (
                *_CLASSIFICATION_TYPES,
                "",
            )
            drawing = job.is_shapes and manifest.task_type in (*gt_shapes.SHAPE_TASK_KINDS, "")
            if records and job.labels and (classification or drawing):
                recorded = record_external_assignments(
                    job=job, marketplace=MARKETPLACE, records=records, actor=actor, source=source or "groundtruth"
                )
                if recorded.skipped:
                    assignment, reason = recorded.skipped[0]
                    raise ServiceError(
                        f"{len(recorded.skipped)} worker response(s) cannot be recorded, e.g. {assignment}: {reason}."
                    )
                result.assignments_created = recorded.assignments_created
                result.assignments_unchanged = recorded.assignments_unchanged + recorded.assignments_updated
                result.answers_created = recorded.answers_created
                result.workers_created = recorded.workers_created
            elif records:
                result.warnings.append(
                    f"{len(records)} worker response(s) not recorded as answers: task type "
                    f"{manifest.task_type or 'unknown'} is not a kind of answer job {job.pk} holds."
                )
            result.workers_total = len({r.external_worker_id for r in records})
            labeling_job = LabelingJob.objects.filter(job=job).first()
            pricing: Pricing | None = None
            if labeling_job is not None and labeling_job.name == manifest.labeling_job_name:
                pricing = Pricing.of(labeling_job)  # the results of the labeling job run from here
            elif history_costs:
                name = manifest.labeling_job_name or f"job-{job.pk}"
                pricing = Pricing(name=name, reference=name, task_price=task_price or Decimal("0"), dated=True)
            if pricing is not None:
                result.costs_booked = book_groundtruth_costs(
                    job=job,
                    pricing=pricing,
                    objects=[(item_external_id(line), line.metadata) for line in manifest.lines if line.has_label],
                    responses=[record.external_assignment_id for record in records],
                )
            if result.items_created or result.gt_labels_created or result.gt_labels_updated:
                record_audit_event(
                    actor=actor,
                    action="groundtruth.imported",
                    object_type="job",
                    object_id=job.pk,
                    after={
                        "source": source,
                        "labeling_job": manifest.labeling_job_name,
                        "items_created": result.items_created,
                        "groundtruth_labels": result.gt_labels_created + result.gt_labels_updated,
                    },
                )
    except IntegrityError as exc:
        raise ServiceError("Another import into this job ran at the same time; run the import again.") from exc
    if run_consensus and (result.assignments_created or result.items_created) and result.answers_created:
        try:
            result.consensus_version = compute_consensus(job=job, actor=actor).version
        except ServiceError as exc:
            result.warnings.append(f"Consensus did not run: {exc}")
    return result


def parse_gold_file(text: str) -> dict[str, Any]:
    """Known answers from ``[{"ImageId": ..., "Label": ...}]`` (Ground Truth's samples) or ``{key: label}``."""
    try:
        data = load_storable(text)
    except ValueError as exc:
        raise ServiceError(f"The gold file is not JSON we can read ({reason(exc)}).") from exc
    if isinstance(data, dict):
        return {str(k): v for k, v in data.items()}
    if isinstance(data, list) and all(isinstance(row, dict) for row in data):
        gold: dict[str, Any] = {}
        for row in data:
            key = next((row[k] for k in ("ImageId", "id", "external_id", "source-ref") if k in row), None)
            value = next((row[k] for k in ("Label", "label", "gold") if k in row), None)
            if key is None or value is None:
                raise ServiceError("Each gold row needs an id (ImageId/id) and a label (Label/label).")
            gold[str(key)] = value
        return gold
    raise ServiceError("The gold file must be a JSON object or a list of objects.")
