"""Which ``Answer.*`` field holds a job's label, and how its values become labels. Pure: no Django.

Three answer styles occur in MTurk results:

- ``column``: one field whose value is the label (a select, a radio group with one name, a text box);
- ``pipe``: one field holding several labels joined by ``|`` (what a check-box group with one name gives);
- ``group``: one boolean field per label, ``Answer.<group>.<label>`` = ``true``/``false`` (crowd-html
  radio groups and check boxes, and classic layouts' per-label check boxes).

Every other answer field (free text, counters, further questions) is kept verbatim with the assignment and
exported again, but it is not aggregated: consensus and scoring need a label from a known set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

TRUE_VALUES = frozenset({"true", "on", "1", "yes", "y", "checked", "x"})
FALSE_VALUES = frozenset({"false", "off", "0", "no", "n", ""})
# A field with more distinct values than this is free text, not a label set.
MAX_INFERRED_LABELS = 50

Style = Literal["column", "pipe", "group"]


class SchemaError(ValueError):
    """No usable label field; the message is one sentence naming the choices."""


@dataclass(frozen=True)
class LabelSchema:
    field: str
    style: Style
    labels: tuple[str, ...]
    multilabel: bool

    def value(self, answers: Mapping[str, str]) -> tuple[Any, str | None]:
        """(the label or label list, None), (None, None) for no answer, or (None, reason)."""
        if self.style == "group":
            ticked = [
                sub for sub in self.labels if answers.get(f"{self.field}.{sub}", "").strip().lower() in TRUE_VALUES
            ]
            extra = [
                key.split(".", 1)[1]
                for key, raw in answers.items()
                if key.startswith(self.field + ".") and key.split(".", 1)[1] not in self.labels
                if raw.strip().lower() in TRUE_VALUES
            ]
            if extra:
                return None, f"{self.field} ticks {', '.join(extra)}, which is not one of the job's labels"
            if self.multilabel:
                return ticked, None
            if len(ticked) > 1:
                return None, f"{self.field} has {len(ticked)} options ticked where one label is wanted"
            return (ticked[0], None) if ticked else (None, None)
        raw = answers.get(self.field, "").strip()
        if self.multilabel:
            return [part.strip() for part in raw.split("|") if part.strip()], None
        return (raw, None) if raw else (None, None)

    def answered_labels(self, rows: Iterable[Mapping[str, str]]) -> list[str]:
        """Every label the rows' answers give, the schema's or not, in natural order: a ticked box of the
        group, a ``|``-separated part of a multi-label field, or a single-label field's value (one holding
        ``|`` is a multi-label answer, not a label, and is left to the row's own check)."""
        found: set[str] = set()
        prefix = self.field + "."
        for answers in rows:
            if self.style == "group":
                found.update(
                    key[len(prefix) :]
                    for key, raw in answers.items()
                    if key.startswith(prefix) and raw.strip().lower() in TRUE_VALUES
                )
                continue
            raw = answers.get(self.field, "").strip()
            if self.multilabel:
                found.update(part.strip() for part in raw.split("|") if part.strip())
            elif raw and "|" not in raw:
                found.add(raw)
        return _natural(found)

    def unknown_labels(self, rows: Iterable[Mapping[str, str]]) -> list[str]:
        """The labels the rows' answers give that the schema's label set lacks, in natural order."""
        return [label for label in self.answered_labels(rows) if label not in self.labels]

    def with_labels(self, labels: Sequence[str]) -> LabelSchema:
        return replace(self, labels=tuple(labels))

    def fields(self, value: Any) -> dict[str, str]:
        """The answer fields a label (or label list) is written as: the inverse of :meth:`value`."""
        chosen = set(value) if isinstance(value, list) else {value}
        if self.style == "group":
            return {f"{self.field}.{label}": "true" if label in chosen else "false" for label in self.labels}
        if isinstance(value, list):
            return {self.field: "|".join(label for label in self.labels if label in chosen)}
        return {self.field: str(value)}


def boolean_groups(columns: Sequence[str], rows: Iterable[Mapping[str, str]]) -> dict[str, list[str]]:
    """``<group>.<label>`` columns with only boolean values, by group (two labels at least)."""
    rows = list(rows)
    groups: dict[str, list[str]] = {}
    for column in columns:
        if "." in column:
            group, label = column.split(".", 1)
            groups.setdefault(group, []).append(label)
    boolean = TRUE_VALUES | FALSE_VALUES
    return {
        group: labels
        for group, labels in groups.items()
        if len(labels) >= 2
        and all(row.get(f"{group}.{label}", "").strip().lower() in boolean for row in rows for label in labels)
    }


def _natural(values: Iterable[str]) -> list[str]:
    def key(value: str) -> tuple[int, float, str]:
        try:
            return 0, float(value), value
        except ValueError:
            return 1, 0.0, value.casefold()

    return sorted(set(values), key=key)


def infer_schema(
    *,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, str]],
    field: str = "",
    job_labels: Sequence[str] | None = None,
    job_multilabel: bool | None = None,
    labels: Sequence[str] | None = None,
) -> LabelSchema:
    """The label field of a results file's answers.

    ``field`` names it (a column or a group); otherwise it is inferred: the one boolean group, else the
    one answer column, else (for an existing job) the one column whose values are all the job's labels.
    ``job_labels``/``job_multilabel`` (an existing job) fix the label set; ``labels`` (a new job) may;
    otherwise the labels are the field's distinct values.
    """
    groups = boolean_groups(columns, rows)
    in_groups = {f"{g}.{label}" for g, sub in groups.items() for label in sub}
    plain = [c for c in columns if c not in in_groups]
    if field:
        if field not in groups and field not in plain:
            raise SchemaError(f"The file has no answer field or check-box group named {field!r}.")
    elif len(groups) == 1:
        field = next(iter(groups))
    elif not groups and len(plain) == 1:
        field = plain[0]
    elif job_labels is not None:
        allowed = {str(label) for label in job_labels}
        fits = [
            c
            for c in plain
            if any(row.get(c, "").strip() for row in rows)
            and all({p.strip() for p in row.get(c, "").split("|") if p.strip()} <= allowed for row in rows)
        ]
        if len(fits) != 1:
            raise SchemaError(_ambiguous(groups, plain))
        field = fits[0]
    else:
        raise SchemaError(_ambiguous(groups, plain))

    if field in groups:
        sub = groups[field]
        if job_labels is not None:
            multilabel = bool(job_multilabel)
            chosen = tuple(str(label) for label in job_labels)
        else:
            ticks = [sum(row.get(f"{field}.{s}", "").strip().lower() in TRUE_VALUES for s in sub) for row in rows]
            multilabel = any(t != 1 for t in ticks)
            chosen = tuple(labels) if labels else tuple(sub)
        return LabelSchema(field, "group", chosen, multilabel)

    values = [row.get(field, "").strip() for row in rows]
    multilabel = bool(job_multilabel) if job_labels is not None else any("|" in v for v in values)
    if job_labels is not None:
        chosen = tuple(str(label) for label in job_labels)
    elif labels:
        chosen = tuple(labels)
    else:
        parts = [p.strip() for v in values for p in (v.split("|") if multilabel else [v]) if p.strip()]
        distinct = _natural(parts)
        if len(distinct) > MAX_INFERRED_LABELS:
            raise SchemaError(
                f"Answer.{field} has {len(distinct)} distinct values, so it looks like free text, not a label; "
                "pick a categorical field with --answer-field or give the labels with --labels."
            )
        if len(distinct) < 2:
            raise SchemaError(
                f"Answer.{field} has {len(distinct)} distinct value(s) in this file, too few to infer a label set; "
                "give the labels with --labels."
            )
        chosen = tuple(distinct)
    return LabelSchema(field, "pipe" if multilabel else "column", chosen, multilabel)


def _ambiguous(groups: Mapping[str, list[str]], plain: Sequence[str]) -> str:
    names = [*groups, *plain]
    shown = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
    return f"The file has {len(names)} answer fields; name the one that holds the label with --answer-field ({shown})."
