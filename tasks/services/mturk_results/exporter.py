"""``export_mturk_results``: a job's work as a requester-UI batch results CSV.

One row per answer (per assignment when its Hit has one item, as on MTurk): the requester UI's columns,
``Input.*`` from the item's payload and ``Answer.*`` from the assignment's kept MTurk fields, or, for work
done here, the label written back in the job's answer field. Only submitted, approved and rejected
assignments are results. The file imports again with ``import_mturk_results``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import IO, Any

from django.db.models import Count

from tasks.models import DONE_ASSIGNMENT_STATES, Answer, HitItem, Job
from tasks.services.imports import GOLD_COLUMN
from tasks.services.mturk_results.reader import (
    ANSWER_PREFIX,
    DECISION_COLUMNS,
    INPUT_PREFIX,
    STANDARD_COLUMNS,
    format_time,
)
from tasks.services.mturk_results.schema import LabelSchema, Style

DEFAULT_ANSWER_FIELD = "label"
_STATUS = {"submitted": "Submitted", "approved": "Approved", "rejected": "Rejected"}
_CHUNK = 5000


def _schema(job: Job) -> LabelSchema:
    field = job.answer_field or DEFAULT_ANSWER_FIELD
    style: Style = "pipe" if job.is_multilabel else "column"
    return LabelSchema(field, style, tuple(str(label) for label in job.labels), job.is_multilabel)


def _answers(job: Job) -> Any:
    return (
        Answer.objects.filter(job=job, assignment__state__in=DONE_ASSIGNMENT_STATES)
        .select_related("assignment__hit", "assignment__raw_result", "worker", "item")
        .order_by("assignment_id", "item_id")
    )


def _money(amount: Decimal) -> str:
    cents = amount.quantize(Decimal("0.01"))
    return f"${cents if cents == amount else amount.normalize()}"


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _rows(job: Job, schema: LabelSchema, multi_item_hits: set[int]) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """(requester-UI columns and inputs, answers) per answer, streamed."""
    for answer in _answers(job).iterator(chunk_size=_CHUNK):
        assignment = answer.assignment
        hit = assignment.hit
        raw = getattr(assignment, "raw_result", None)
        hit_id = hit.external_id or str(hit.uuid)
        assignment_id = assignment.external_id or str(assignment.uuid)
        if hit.pk in multi_item_hits or hit.gold_slots:  # gold placed on the page makes it multi-item too
            assignment_id = f"{assignment_id}-{answer.item.external_id}"
        columns = dict(raw.columns) if raw is not None else {"Title": job.name, "Description": job.description}
        reviewed = format_time(assignment.reviewed_at)
        columns.update(
            HITId=hit_id,
            AssignmentId=assignment_id,
            WorkerId=answer.worker.external_id,
            AssignmentStatus=_STATUS[assignment.state],
            AcceptTime=format_time(assignment.accepted_at),
            SubmitTime=format_time(assignment.submitted_at),
            ApprovalTime=reviewed if assignment.state == "approved" else "",
            RejectionTime=reviewed if assignment.state == "rejected" else "",
            Reward=_money(assignment.reward),
        )
        inputs = {f"{INPUT_PREFIX}{k}": _cell(v) for k, v in answer.item.payload.items()}
        if answer.item.external_id != hit_id:
            inputs[f"{INPUT_PREFIX}external_id"] = answer.item.external_id
        if answer.item.is_gold:
            gold = answer.item.gold_answer
            inputs[f"{INPUT_PREFIX}{GOLD_COLUMN}"] = "|".join(gold) if isinstance(gold, list) else str(gold)
        fields = dict(raw.answers) if raw is not None else schema.fields(answer.value)
        yield {**columns, **inputs}, {f"{ANSWER_PREFIX}{k}": v for k, v in fields.items()}


def export_mturk_results(job: Job, stream: IO[str]) -> int:
    """Write ``job``'s results to ``stream`` (a text stream opened with ``newline=""``); return the row count."""
    schema = _schema(job)
    multi_item_hits = set(
        HitItem.objects.filter(hit__job=job)
        .values("hit_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("hit_id", flat=True)
    )
    input_columns: set[str] = set()
    answer_columns: set[str] = set()
    for base, answers in _rows(job, schema, multi_item_hits):
        input_columns.update(k for k in base if k.startswith(INPUT_PREFIX))
        answer_columns.update(answers)
    header = [*STANDARD_COLUMNS, *sorted(input_columns), *sorted(answer_columns), *DECISION_COLUMNS]
    writer = csv.DictWriter(stream, fieldnames=header, restval="", quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writeheader()
    count = 0
    for base, answers in _rows(job, schema, multi_item_hits):
        writer.writerow({**base, **answers})
        count += 1
    return count
