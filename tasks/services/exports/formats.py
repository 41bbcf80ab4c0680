"""The built-in export formats: CSV, JSON Lines, SageMaker Ground Truth augmented manifest, COCO."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.utils.text import slugify

from tasks.label_selectors import ExportOptions, LabelRow
from tasks.models import SHAPE_KINDS, Job, TaskKind
from tasks.services.errors import ServiceError
from tasks.services.exports.registry import Exporter, register_exporter


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _label_text(value: Any) -> str:
    if isinstance(value, list):
        return "|".join(str(v) for v in value)
    return str(value)


class CsvExporter(Exporter):
    name = "csv"
    content_type = "text/csv; charset=utf-8"
    extension = "csv"

    def render(self, job: Job, chunks: Iterable[list[LabelRow]], options: ExportOptions) -> Iterator[bytes]:
        header = ["external_id", "label", "confidence", "answers_count", "method"]
        if options.answers or options.scores:
            header.append("answers")
        if options.cost:
            header.append(f"cost_{job.currency.lower()}")
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        for chunk in chunks:
            for row in chunk:
                line: list[Any] = [
                    row.external_id,
                    _label_text(row.value),
                    repr(float(row.confidence)),
                    row.answers_count,
                    row.method,
                ]
                if options.answers or options.scores:
                    line.append(_dumps(row.answers or []))
                if options.cost:
                    line.append(str(row.cost))
                writer.writerow(line)
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
        if buffer.tell():
            yield buffer.getvalue().encode()


def label_record(row: LabelRow, options: ExportOptions) -> dict[str, Any]:
    record: dict[str, Any] = {
        "external_id": row.external_id,
        "label": row.value,
        "confidence": row.confidence,
        "probabilities": row.probabilities,
        "answers_count": row.answers_count,
        "method": row.method,
    }
    if options.answers or options.scores:
        record["answers"] = row.answers or []
    if options.cost:
        record["cost"] = str(row.cost)
    return record


class JsonLinesExporter(Exporter):
    name = "jsonl"
    content_type = "application/x-ndjson"
    extension = "jsonl"

    def render(self, job: Job, chunks: Iterable[list[LabelRow]], options: ExportOptions) -> Iterator[bytes]:
        for chunk in chunks:
            yield "".join(_dumps({**label_record(r, options), "payload": r.payload}) + "\n" for r in chunk).encode()


_GT_TYPES = {
    TaskKind.IMAGE_CLASSIFICATION: "groundtruth/image-classification",
    TaskKind.IMAGE_MULTILABEL: "groundtruth/image-classification-multilabel",
    TaskKind.TEXT_CLASSIFICATION: "groundtruth/text-classification",
    TaskKind.TEXT_MULTILABEL: "groundtruth/text-classification-multilabel",
}


class ManifestExporter(Exporter):
    """A Ground Truth augmented manifest: the item's source plus ``<attribute>`` and ``<attribute>-metadata``."""

    name = "manifest"
    content_type = "application/x-ndjson"
    extension = "manifest"

    def check(self, job: Job, options: ExportOptions) -> None:
        if job.task_kind not in _GT_TYPES:
            raise ServiceError(f"Ground Truth has no manifest type for {job.get_task_kind_display()} jobs.")

    def _line(self, job: Job, attribute: str, positions: dict[str, int], row: LabelRow, options: ExportOptions) -> str:
        record: dict[str, Any] = {}
        if job.is_image:
            record["source-ref"] = row.payload.get("image_url") or row.payload.get("source-ref")
        else:
            record["source"] = row.payload.get("text") or row.payload.get("source")
        stamp = row.created_at.replace(tzinfo=None).isoformat(timespec="microseconds")
        meta: dict[str, Any] = {
            "job-name": f"labeling-job/{attribute}",
            "human-annotated": "yes",
            "creation-date": stamp,
            "type": _GT_TYPES[TaskKind(job.task_kind)],
        }
        if job.is_multilabel:
            chosen = [positions[str(v)] for v in row.value]
            record[attribute] = chosen
            meta["class-map"] = {str(positions[str(v)]): str(v) for v in row.value}
            meta["confidence-map"] = {
                str(positions[name]): round(float(p), 2) for name, p in row.probabilities.items() if name in row.value
            }
        else:
            record[attribute] = positions[str(row.value)]
            meta["class-name"] = str(row.value)
            meta["confidence"] = round(float(row.confidence), 2)
        if options.answers or options.scores:
            meta["worker-answers"] = row.answers or []
        if options.cost:
            meta["cost"] = str(row.cost)
        record[f"{attribute}-metadata"] = meta
        return _dumps(record) + "\n"

    def render(self, job: Job, chunks: Iterable[list[LabelRow]], options: ExportOptions) -> Iterator[bytes]:
        attribute = slugify(job.name) or f"job-{job.pk}"
        positions = {str(label): i for i, label in enumerate(job.labels)}
        for chunk in chunks:
            yield "".join(self._line(job, attribute, positions, r, options) for r in chunk).encode()


# Task kinds with box or polygon labels.
COCO_KINDS: frozenset[str] = SHAPE_KINDS


def _coco_annotation(shape: dict[str, Any]) -> dict[str, Any]:
    """One of our shapes (``box`` as x1, y1, x2, y2 or ``points``) as COCO's ``bbox`` (x, y, w, h),
    ``segmentation`` (a flat polygon) and ``area``."""
    if "box" in shape:
        x1, y1, x2, y2 = (float(v) for v in shape["box"])
        return {"bbox": [x1, y1, x2 - x1, y2 - y1], "area": round((x2 - x1) * (y2 - y1), 2), "iscrowd": 0}
    points = [(float(x), float(y)) for x, y in shape.get("points", [])]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    area = abs(sum(xs[i] * ys[i - 1] - xs[i - 1] * ys[i] for i in range(len(points)))) / 2.0
    return {
        "segmentation": [[c for point in points for c in point]],
        "bbox": [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)] if points else [0, 0, 0, 0],
        "area": round(area, 2),
        "iscrowd": 0,
    }


class CocoExporter(Exporter):
    """COCO detection/segmentation JSON: images streamed, then their annotations (``bbox``/``segmentation``)."""

    name = "coco"
    content_type = "application/json"
    extension = "json"

    def check(self, job: Job, options: ExportOptions) -> None:
        if job.task_kind not in COCO_KINDS:
            raise ServiceError(
                f"COCO export needs box or polygon labels; job {job.pk} is {job.get_task_kind_display()}."
            )

    def render(self, job: Job, chunks: Iterable[list[LabelRow]], options: ExportOptions) -> Iterator[bytes]:
        categories = [{"id": i + 1, "name": str(name)} for i, name in enumerate(job.labels)]
        category_ids = {c["name"]: c["id"] for c in categories}
        yield b'{"categories":' + _dumps(categories).encode() + b',"images":['
        annotations: list[dict[str, Any]] = []
        first = True
        for chunk in chunks:
            parts = []
            for row in chunk:
                image: dict[str, Any] = {"id": row.item_id, "file_name": row.payload.get("image_url", row.external_id)}
                for key in ("width", "height"):
                    if isinstance(row.payload.get(key), int | float | str) and str(row.payload[key]).strip():
                        image[key] = int(float(row.payload[key]))
                parts.append(("" if first else ",") + _dumps(image))
                first = False
                shapes = row.value.get("shapes", []) if isinstance(row.value, dict) else []
                for shape in shapes:
                    annotations.append(
                        {
                            "id": len(annotations) + 1,
                            "image_id": row.item_id,
                            "category_id": category_ids.get(str(shape.get("label"))),
                            **_coco_annotation(shape),
                            **({"score": shape["confidence"]} if "confidence" in shape else {}),
                        }
                    )
            yield "".join(parts).encode()
        yield b'],"annotations":' + _dumps(annotations).encode() + b"}"


for _exporter in (CsvExporter(), JsonLinesExporter(), ManifestExporter(), CocoExporter()):
    register_exporter(_exporter, replace=True)
