"""A Ground Truth pre-annotation Lambda that skips objects a model already labels confidently.

Request (version ``2018-10-16``): ``{"version", "labelingJobArn", "dataObject": {"source-ref"|"source",
...}}``; answer: ``{"taskInput": {...}, "isHumanAnnotationRequired": bool}``. A data object may carry a
model's pre-label as ``"crowdops-prelabel": {"label": ..., "confidence": 0.97}``; when its confidence
reaches ``CROWDOPS_SKIP_CONFIDENCE`` (default 0.95) no worker is asked. ``taskInput`` gives the template
``taskObject`` (the S3 URI or the text), ``labels`` (from ``CROWDOPS_LABELS``, a JSON list) and the
pre-label, so a worker's page can show it as a suggestion.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

VERSION = "2018-10-16"
PRELABEL_KEY = "crowdops-prelabel"


def pre_annotate(
    event: Mapping[str, Any], *, threshold: float = 0.95, labels: list[str] | None = None
) -> dict[str, Any]:
    if event.get("version") != VERSION:
        raise ValueError(f"unsupported request version {event.get('version')!r}")
    data = event.get("dataObject") or {}
    task_object = data.get("source-ref", data.get("source"))
    if task_object is None:
        raise ValueError("the data object has neither 'source-ref' nor 'source'")
    task_input: dict[str, Any] = {"taskObject": task_object, "labels": labels or []}
    prelabel = data.get(PRELABEL_KEY)
    confident = False
    if isinstance(prelabel, dict) and isinstance(prelabel.get("confidence"), int | float):
        task_input["prelabel"] = prelabel.get("label")
        confident = float(prelabel["confidence"]) >= threshold and prelabel.get("label") is not None
    return {"taskInput": task_input, "isHumanAnnotationRequired": not confident}


def handler(event: Mapping[str, Any], context: Any = None) -> dict[str, Any]:
    threshold = float(os.environ.get("CROWDOPS_SKIP_CONFIDENCE", "0.95"))
    labels = json.loads(os.environ.get("CROWDOPS_LABELS", "[]"))
    return pre_annotate(event, threshold=threshold, labels=labels)
