"""Exports of a job's consensus labels: the formats, the extras, streaming and the registry."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tasks.label_selectors import ExportOptions, LabelRow, iter_label_chunks
from tasks.models import ConsensusLabel, Job, TaskKind
from tasks.services.errors import ServiceError
from tasks.services.exports import (
    Exporter,
    UnknownFormat,
    export_labels,
    get_exporter,
    register_exporter,
    stream_labels,
    unregister_exporter,
)
from tests.factories import JobFactory
from workforce.audit import Actor
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")


def run(job: Job, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    export_labels(job=job, fmt=fmt, out=out, actor=SYSTEM, options=ExportOptions(**options))
    return out.getvalue()


def test_csv_has_one_row_per_item_with_the_majority_label(labeled_job: Job) -> None:
    rows = list(csv.DictReader(io.StringIO(run(labeled_job, "csv").decode())))
    assert sorted(r["external_id"] for r in rows) == sorted(labeled_job.items.values_list("external_id", flat=True))
    assert {r["label"] for r in rows} == {"pos"}
    assert {r["answers_count"] for r in rows} == {"3"}
    assert list(rows[0]) == ["external_id", "label", "confidence", "answers_count", "method"]


def test_csv_with_answers_scores_and_cost_adds_the_columns(labeled_job: Job) -> None:
    rows = list(csv.DictReader(io.StringIO(run(labeled_job, "csv", answers=True, scores=True, cost=True).decode())))
    first = rows[0]
    answers = json.loads(first["answers"])
    assert sorted(a["value"] for a in answers) == ["neg", "pos", "pos"]
    agreements = sorted(a["worker_score"]["agreement"] for a in answers)
    assert agreements == [0.0, 1.0, 1.0]
    # three assignments at 0.05 + 0.01 each answered only this item, plus the Hit's own 0.03 charge
    assert first["cost_usd"] == "0.2100"


def test_cost_of_an_assignment_is_split_over_the_items_it_answered(
    make_published_job: Any, make_worker: Any, actor: Actor
) -> None:
    from decimal import Decimal

    from tasks.models import Assignment
    from tasks.services.collection import submit_assignment
    from tasks.services.consensus import compute_consensus
    from tasks.services.ledger import CostLine, record_costs
    from tasks.services.pool import assign_next_hit

    job = make_published_job(items=2, redundancy=1, items_per_hit=2)
    worker = make_worker()
    a = assign_next_hit(job=job, worker=worker)
    submit_assignment(assignment=a, worker=worker, answers={i.pk: "pos" for i in a.hit.items.all()})
    compute_consensus(job=job, actor=actor)
    record_costs([CostLine(job.pk, "reward", Decimal("0.10"), "r", "internal", assignment_id=a.pk)])
    assert Assignment.objects.filter(job=job).count() == 1
    rows = [r for chunk in iter_label_chunks(job, ExportOptions(cost=True)) for r in chunk]
    assert [r.cost for r in rows] == [Decimal("0.0500"), Decimal("0.0500")]


def test_jsonl_lines_carry_label_probabilities_and_payload(labeled_job: Job) -> None:
    lines = [json.loads(line) for line in run(labeled_job, "jsonl").decode().splitlines()]
    assert len(lines) == 4
    assert lines[0]["label"] == "pos"
    assert set(lines[0]["probabilities"]) == {"pos", "neg", "neutral"}
    assert lines[0]["payload"]["text"].startswith("text of")
    assert "answers" not in lines[0]


def test_jsonl_min_confidence_filters_labels(labeled_job: Job) -> None:
    ConsensusLabel.objects.filter(pk=ConsensusLabel.objects.filter(job=labeled_job).first().pk).update(confidence=0.2)
    assert len(run(labeled_job, "jsonl", min_confidence=0.5).decode().splitlines()) == 3


def test_manifest_follows_ground_truth_classification_output(labeled_job: Job) -> None:
    labeled_job.name = "Reviews batch 1"
    labeled_job.save()
    line = json.loads(run(labeled_job, "manifest").decode().splitlines()[0])
    assert line["source"].startswith("text of")
    assert line["reviews-batch-1"] == 0  # "pos" is the first label
    meta = line["reviews-batch-1-metadata"]
    assert meta["class-name"] == "pos"
    assert meta["type"] == "groundtruth/text-classification"
    assert meta["job-name"] == "labeling-job/reviews-batch-1"
    assert meta["human-annotated"] == "yes"


def test_manifest_of_a_multilabel_job_lists_class_indexes(
    make_published_job: Any, make_worker: Any, actor: Actor
) -> None:
    from tasks.services.consensus import compute_consensus
    from tests.tasks.exports.conftest import work

    job = make_published_job(items=2, redundancy=1, task_kind=TaskKind.IMAGE_MULTILABEL, labels=["cat", "dog", "car"])
    job.items.update(payload={"image_url": "s3://bucket/a.jpg"})
    work(job, [make_worker()], lambda n, ext: ["dog", "car"])
    compute_consensus(job=job, actor=actor)
    line = json.loads(run(job, "manifest").decode().splitlines()[0])
    attribute = next(k for k in line if k.endswith("-metadata")).removesuffix("-metadata")
    assert line["source-ref"] == "s3://bucket/a.jpg"
    assert sorted(line[attribute]) == [1, 2]
    assert line[f"{attribute}-metadata"]["class-map"] == {"1": "dog", "2": "car"}
    assert line[f"{attribute}-metadata"]["type"] == "groundtruth/image-classification-multilabel"


def test_coco_refuses_classification_jobs_with_a_sentence(labeled_job: Job) -> None:
    with pytest.raises(ServiceError, match="COCO export needs box or polygon labels"):
        run(labeled_job, "coco")


def test_a_known_but_unregistered_format_is_refused_with_a_sentence(labeled_job: Job) -> None:
    mturk = get_exporter("mturk")
    unregister_exporter("mturk")
    try:
        with pytest.raises(UnknownFormat, match="mturk export format is not available yet"):
            run(labeled_job, "mturk")
    finally:
        register_exporter(mturk)
    with pytest.raises(UnknownFormat, match="Unknown export format 'xml'"):
        get_exporter("xml")


def test_another_module_can_register_a_format(labeled_job: Job) -> None:
    class Ids(Exporter):
        name = "ids"

        def render(self, job: Job, chunks: Any, options: ExportOptions) -> Iterator[bytes]:
            for chunk in chunks:
                yield b"".join(r.external_id.encode() + b"\n" for r in chunk)

    register_exporter(Ids())
    try:
        assert len(run(labeled_job, "ids").splitlines()) == 4
        with pytest.raises(ValueError, match="already registered"):
            register_exporter(Ids())
    finally:
        unregister_exporter("ids")


def test_a_job_without_consensus_cannot_be_exported() -> None:
    job = JobFactory()
    with pytest.raises(ServiceError, match="no consensus labels yet"):
        run(job, "csv")


def test_export_is_audited_with_format_rows_and_checksum(labeled_job: Job) -> None:
    run(labeled_job, "csv")
    event = AuditEvent.objects.get(action="labels.exported")
    assert event.after["format"] == "csv"
    assert event.after["rows"] == 4
    assert len(event.after["sha256"]) == 64


def test_streaming_reads_labels_chunk_by_chunk_and_reports_progress(labeled_job: Job) -> None:
    seen: list[tuple[int, int]] = []
    stream = stream_labels(job=labeled_job, fmt="jsonl", actor=SYSTEM, progress=lambda d, t: seen.append((d, t)))
    assert seen == []  # nothing read before the consumer asks
    body = b"".join(stream)
    assert len(body.splitlines()) == 4
    assert seen == [(4, 4)]


def test_chunks_page_through_labels_in_item_order(labeled_job: Job) -> None:
    chunks = list(iter_label_chunks(labeled_job, ExportOptions(), chunk_size=3))
    assert [len(c) for c in chunks] == [3, 1]
    ids = [r.item_id for c in chunks for r in c]
    assert ids == sorted(ids)
    assert all(isinstance(r, LabelRow) for c in chunks for r in c)
