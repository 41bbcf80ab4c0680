"""Our consolidation as a Ground Truth annotation-consolidation (post-annotation) Lambda.

Ground Truth invokes it once per batch with the documented request (version ``2018-10-16``)::

    {"version": "2018-10-16", "labelingJobArn": ..., "labelCategories": [...],
     "labelAttributeName": "...", "roleArn": ..., "payload": {"s3Uri": "s3://..."}, "outputConfig": ...}

The payload file is a JSON list of ``{"datasetObjectId", "dataObject": {"s3Uri"|"content"},
"annotations": [{"workerId", "annotationData": {"content": "<JSON string>"}}]}``; the answer is a list
of ``{"datasetObjectId", "consolidatedAnnotation": {"content": {<labelAttributeName>: ...}}}``.

Classification answers (a ``label`` in the worker's content) are aggregated with our Dawid-Skene,
with gold clamping: objects whose ``source-ref``/``source`` appears in the JSON mapping at
``CROWDOPS_GOLD_S3_URI`` keep their known label and anchor the workers' confusion matrices. Other
answers (boxes, free-form custom content) are passed through as the list of workers' annotations.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from tasks.aggregation.registry import aggregate_frame

VERSION = "2018-10-16"
METHOD = os.environ.get("CROWDOPS_CONSOLIDATION_METHOD", "ds")


def _split(uri: str) -> tuple[str, str]:
    match = re.match(r"^s3://([^/]+)/(.+)$", uri)
    if match is None:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    return match.group(1), match.group(2)


def _read_json(s3: Any, uri: str) -> Any:
    bucket, key = _split(uri)
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def _label(content: Any) -> str | None:
    """The single label of a classification answer (``{"<element>": {"label": ...}}``), else None."""
    if isinstance(content, dict) and len(content) == 1:
        inner = next(iter(content.values()))
        if isinstance(inner, dict) and isinstance(inner.get("label"), str):
            return str(inner["label"])
    return None


def _object_key(data_object: Mapping[str, Any]) -> str:
    return str(data_object.get("s3Uri") or data_object.get("source-ref") or data_object.get("content") or "")


def consolidate(
    request: Mapping[str, Any], payload: list[Mapping[str, Any]], gold: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The consolidation response for one request and its payload (pure: no AWS calls)."""
    if request.get("version") != VERSION:
        raise ValueError(f"unsupported request version {request.get('version')!r}")
    attribute = str(request["labelAttributeName"])
    categories = [str(c) for c in request.get("labelCategories") or []]
    job_name = str(request.get("labelingJobArn", "")).rsplit("/", 1)[-1]
    gold = gold or {}
    rows: list[tuple[str, str, str]] = []
    passthrough: dict[str, list[dict[str, Any]]] = {}
    task_gold: dict[str, str] = {}
    for obj in payload:
        object_id = str(obj["datasetObjectId"])
        key = _object_key(obj.get("dataObject") or {})
        if key in gold:
            task_gold[object_id] = gold[key]
        for annotation in obj.get("annotations") or []:
            raw = (annotation.get("annotationData") or {}).get("content", "{}")
            content = json.loads(raw) if isinstance(raw, str) else raw
            label = _label(content)
            if label is None:
                passthrough.setdefault(object_id, []).append(
                    {"workerId": annotation.get("workerId"), "annotationData": content}
                )
            else:
                rows.append((object_id, str(annotation.get("workerId")), label))
    results: list[dict[str, Any]] = []
    now = datetime.now(UTC).isoformat()
    if rows:
        import pandas as pd

        frame = pd.DataFrame(rows, columns=["task", "worker", "label"])
        known = {t: g for t, g in task_gold.items() if t in set(frame["task"])}
        consolidated = aggregate_frame(frame, METHOD, gold=known or None)
        for task, label, confidence in consolidated[["task", "label", "confidence"]].itertuples(index=False):
            metadata = {
                "class-name": label,
                "confidence": round(float(confidence), 4),
                "type": "groundtruth/image-classification" if categories else "groundtruth/custom",
                "job-name": f"labeling-job/{job_name}",
                "human-annotated": "yes",
                "creation-date": now,
                "consolidation": f"crowdops-{METHOD}" + ("-gold" if task in known else ""),
            }
            value: Any = categories.index(label) if label in categories else label
            content = {attribute: value, f"{attribute}-metadata": metadata}
            results.append({"datasetObjectId": str(task), "consolidatedAnnotation": {"content": content}})
    done = {r["datasetObjectId"] for r in results}
    for object_id, worker_annotations in passthrough.items():
        if object_id not in done:
            content = {attribute: {"annotationsFromAllWorkers": worker_annotations}}
            results.append({"datasetObjectId": object_id, "consolidatedAnnotation": {"content": content}})
    return sorted(results, key=lambda r: (len(r["datasetObjectId"]), r["datasetObjectId"]))


def handler(event: Mapping[str, Any], context: Any = None, *, s3: Any = None) -> list[dict[str, Any]]:
    """The Lambda entry point: read the payload (and gold) from S3, consolidate, answer."""
    if s3 is None:
        import boto3

        s3 = boto3.client("s3")
    payload = _read_json(s3, str(event["payload"]["s3Uri"]))
    gold_uri = os.environ.get("CROWDOPS_GOLD_S3_URI", "")
    gold = _read_json(s3, gold_uri) if gold_uri else {}
    return consolidate(event, payload, gold)
