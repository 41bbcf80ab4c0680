"""Model predictions: import them, serve uncertain items first, and show them as pre-labels.

``import_predictions`` reads CSV (``external_id,label,score``) or JSON Lines (``{"external_id": ...,
"value" | "label": ..., "score": ...}``), checks every row against the job (known item, a value a worker
could have given, a score in [0, 1]) and writes all rows or none; importing a model's predictions again
replaces that model's earlier ones. Afterwards the job's open Hits are re-ordered so the items the model
is least sure of are handed out first (``Hit.priority``: -100 for a score of 0, -1 for 0.99; Hits
without a prediction keep 0 and come last); Hits built later (at publish) get the same order.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from django.db import transaction
from django.utils import timezone

from tasks.models import Item, Job, Prediction
from tasks.services.collection import validate_value
from tasks.services.errors import ImportValidationError, RowError, ServiceError, SubmissionRefused
from tasks.services.hits import prioritise_hits_by_model
from tasks.services.imports import check_upload_size, load_json_line
from workforce.audit import Actor, record_audit_event

MAX_MODEL_NAME = 100


@dataclass(frozen=True)
class PredictionImportResult:
    model_name: str
    rows: int
    created: int
    updated: int
    hits_reprioritised: int


def _rows(stream: IO[bytes] | IO[str], filename: str) -> Iterator[tuple[int, dict[str, Any]] | RowError]:
    raw = stream.read()
    try:
        text = raw.decode("utf-8-sig") if isinstance(raw, bytes) else raw.lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1 if isinstance(raw, bytes) else 1
        yield RowError(line, "the file is not UTF-8 text (save it as UTF-8 and import it again)")
        return
    if filename.lower().endswith((".jsonl", ".ndjson", ".json")):
        for line, chunk in enumerate(text.splitlines(), start=1):
            if not chunk.strip():
                continue
            try:
                obj = load_json_line(chunk)
            except ValueError as exc:
                yield RowError(line, str(exc))
                continue
            yield (line, obj) if isinstance(obj, dict) else RowError(line, "the line is not a JSON object")
        return
    reader = csv.DictReader(io.StringIO(text))
    fields = set(reader.fieldnames or [])
    if not {"external_id", "score"} <= fields or not fields & {"label", "value"}:
        yield RowError(1, "the header must have external_id, label (or value) and score")
        return
    for row in reader:
        yield reader.line_num, dict(row)


def _parse(job: Job, row: dict[str, Any], items: dict[str, tuple[int, Any]]) -> tuple[int, Any, float] | str:
    external_id = str(row.get("external_id") or "").strip()
    if external_id not in items:
        return f"the job has no item {external_id!r}" if external_id else "the external_id is empty"
    value = row["value"] if "value" in row and row["value"] not in (None, "") else row.get("label")
    if job.is_multilabel and isinstance(value, str):
        value = [v.strip() for v in value.split("|") if v.strip()]
    try:
        score = float(row.get("score"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return f"the score {row.get('score')!r} is not a number"
    if not math.isfinite(score) or not 0.0 <= score <= 1.0:
        return f"the score {score!r} is not between 0 and 1"
    item_id, payload = items[external_id]
    try:
        value = validate_value(job, value, payload)
    except SubmissionRefused as refusal:
        return str(refusal).rstrip(".")
    return item_id, value, score


def import_predictions(
    *, job: Job, stream: IO[bytes] | IO[str], filename: str, model_name: str, actor: Actor
) -> PredictionImportResult:
    """Import one model's predictions for ``job``; all rows or none (``ImportValidationError`` lists lines)."""
    check_upload_size(getattr(stream, "size", None), command="import_predictions")
    model_name = model_name.strip()
    if not model_name or len(model_name) > MAX_MODEL_NAME:
        raise ServiceError(f"Name the model in 1 to {MAX_MODEL_NAME} characters.")
    items = {
        ext: (pk, payload)
        for pk, ext, payload in Item.objects.filter(job=job).values_list("id", "external_id", "payload")
    }
    parsed: dict[int, tuple[Any, float]] = {}
    errors: list[RowError] = []
    total = 0
    for entry in _rows(stream, filename):
        if isinstance(entry, RowError):
            errors.append(entry)
            continue
        total += 1
        line, row = entry
        outcome = _parse(job, row, items)
        if isinstance(outcome, str):
            errors.append(RowError(line, outcome))
        else:
            parsed[outcome[0]] = (outcome[1], outcome[2])
    if errors:
        raise ImportValidationError(errors[:50], total_bad=len(errors))
    if not parsed:
        raise ServiceError("The file has no predictions.")
    now = timezone.now()
    with transaction.atomic():
        before = Prediction.objects.filter(job=job, model_name=model_name, item_id__in=list(parsed)).count()
        Prediction.objects.bulk_create(
            [
                Prediction(job=job, item_id=item_id, model_name=model_name, value=value, score=score, created_at=now)
                for item_id, (value, score) in parsed.items()
            ],
            update_conflicts=True,
            unique_fields=["item", "model_name"],
            update_fields=["value", "score", "created_at"],
            batch_size=5000,
        )
        reordered = prioritise_hits_by_model(job, model_name)
        result = PredictionImportResult(
            model_name=model_name,
            rows=total,
            created=len(parsed) - before,
            updated=before,
            hits_reprioritised=reordered,
        )
        record_audit_event(
            actor=actor,
            action="predictions.imported",
            object_type="job",
            object_id=job.pk,
            after=result.__dict__,
        )
    return result


def import_predictions_from_text(
    *, job: Job, text: str, filename: str, model_name: str, actor: Actor
) -> PredictionImportResult:
    return import_predictions(job=job, stream=io.StringIO(text), filename=filename, model_name=model_name, actor=actor)
