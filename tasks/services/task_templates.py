"""MTurk HTML layouts as a job's task template in the internal pool.

A layout is the HTML a team used on MTurk, with ``${column}`` placeholders. It is filled with the item's
fields, every value HTML-escaped, and served as its own document inside a sandboxed frame (an opaque
origin, strict CSP; see ``tasks.template_views``), so neither item data nor the layout's own scripts ever
run with our origin. The frame hands the form's fields to the page by ``postMessage``; the page posts
them here, and :func:`submit_template_assignment` maps them to the job's label through the job's answer
field (the same mapping MTurk results files use) and keeps every field verbatim for the MTurk export.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from tasks.models import Assignment, Job, RawResult
from tasks.services.collection import shown_value, submit_assignment
from tasks.services.errors import SubmissionRefused
from tasks.services.mturk_results.schema import TRUE_VALUES
from workforce.models import Worker

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.\-]+)\}")
MAX_FIELDS = 500
MAX_FIELD_LENGTH = 20_000


def template_variables(template: str) -> list[str]:
    """The placeholder names of a layout, in first-use order."""
    return list(dict.fromkeys(PLACEHOLDER.findall(template)))


def render_template(template: str, fields: Mapping[str, Any]) -> str:
    """Fill ``${name}`` with the item's field, HTML-escaped (quotes too); a missing field becomes empty."""

    def value(match: re.Match[str]) -> str:
        raw = fields.get(match.group(1), "")
        text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
        return html.escape(text, quote=True)

    return PLACEHOLDER.sub(value, template)


def template_problems(*, task_template: str, answer_field: str, items_per_hit: int) -> list[str]:
    """Why a job's template settings cannot work (empty when they can)."""
    if not task_template.strip():
        return []
    problems = []
    if not answer_field.strip():
        problems.append("A task template needs the answer field: the form field (or check-box group) of the label.")
    if items_per_hit != 1:
        problems.append("A task template shows one item per Hit, as on MTurk: set items per Hit to 1.")
    return problems


def label_from_form(job: Job, fields: Sequence[tuple[str, str]]) -> Any:
    """The job's label (or label list) from a layout's submitted form fields.

    The answer field is either one field (a select, radio buttons or a text box, or check boxes sharing the
    name, which give several values) or a group of ``<field>.<label>`` check boxes or radio buttons.
    """
    name = job.answer_field
    if not name:
        raise SubmissionRefused("This job's task template has no answer field, so no answer can be saved.")
    values = [value.strip() for key, value in fields if key == name and value.strip()]
    group = [key[len(name) + 1 :] for key, value in fields if key.startswith(name + ".")]
    if group:
        ticked = [
            key[len(name) + 1 :]
            for key, value in fields
            if key.startswith(name + ".") and value.strip().lower() in TRUE_VALUES
        ]
        values = list(dict.fromkeys(values + ticked))
    if job.is_multilabel:
        return [part.strip() for value in values for part in value.split("|") if part.strip()]
    if len(values) != 1:
        raise SubmissionRefused(
            f"Choose exactly one answer for “{name}” before submitting."
            if not values
            else f"“{name}” has {len(values)} answers where one is wanted."
        )
    return values[0]


def parse_form_fields(raw: str) -> list[tuple[str, str]]:
    """The ``[[name, value], ...]`` list the task page posts, checked; SubmissionRefused when malformed."""
    try:
        data = json.loads(raw)
    except (TypeError, ValueError, RecursionError):  # RecursionError: nested too deeply to be a form
        raise SubmissionRefused("The task form sent no readable answers.") from None
    if not isinstance(data, list) or len(data) > MAX_FIELDS:
        raise SubmissionRefused("The task form sent no readable answers.")
    fields: list[tuple[str, str]] = []
    for pair in data:
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(part, str) and len(part) <= MAX_FIELD_LENGTH for part in pair)
        ):
            raise SubmissionRefused("The task form sent no readable answers.")
        if "\x00" in pair[0] or "\x00" in pair[1]:
            name = shown_value(pair[0].replace("\x00", ""))
            raise SubmissionRefused(
                f"The form field “{name}” contains a NUL character (\\u0000), which cannot be stored; "
                "remove it and submit again."
            )
        fields.append((pair[0], pair[1]))
    return fields


def submit_template_assignment(*, assignment: UUID, worker: Worker, fields: Sequence[tuple[str, str]]) -> Assignment:
    """Submit a layout's form for the worker's leased assignment: the label as the item's answer, every
    field kept as the assignment's MTurk answer fields. All or nothing."""
    locked = Assignment.objects.select_related("job").filter(uuid=assignment, worker=worker).first()
    if locked is None:
        raise SubmissionRefused("This task is not yours.")
    job = locked.job
    item_ids = list(locked.hit.hit_items.order_by("position").values_list("item_id", flat=True))
    if len(item_ids) != 1:
        raise SubmissionRefused("A task template shows one item per task; this task has several.")
    value = label_from_form(job, fields)
    kept: dict[str, str] = {}
    for key, field_value in fields:
        kept[key] = f"{kept[key]}|{field_value}" if key in kept else field_value
    return submit_assignment(
        assignment=assignment,
        worker=worker,
        answers={item_ids[0]: value},
        also=lambda submitted: RawResult.objects.create(
            assignment=submitted, job=job, answers=kept, columns={}, source="template"
        ),
    )
