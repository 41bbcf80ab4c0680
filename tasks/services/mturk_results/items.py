"""The items and kept MTurk fields of a results file's rows: which item each row answers, the items to create, and
the ``RawResult`` copies of each assignment's answer fields and HIT columns (see ``importer``'s module doc)."""

from __future__ import annotations

from typing import Any

from tasks.models import Assignment, Item, Job, RawResult
from tasks.services.imports import (
    GOLD_COLUMN,
    MAX_EXTERNAL_ID,
    content_id,
    parse_gold_answer,
    payload_hash,
    same_content,
)
from tasks.services.mturk_results.reader import ResultRow
from workforce.models import Marketplace

MARKETPLACE = Marketplace.MTURK
ITEM_ID_INPUTS = ("external_id", "id")


def _payload(row: ResultRow) -> dict[str, Any]:
    return {k: v for k, v in row.inputs.items() if k not in ITEM_ID_INPUTS and k != GOLD_COLUMN}


def _content(job: Job, row: ResultRow) -> tuple[dict[str, Any], Any, str | None]:
    """The row's item content (its payload, with the known answer of a gold item), the gold answer, a problem."""
    payload = _payload(row)
    gold, problem = parse_gold_answer(job, row.inputs.get(GOLD_COLUMN, "").strip())
    return (payload if gold is None else {**payload, "\u0000gold": gold}), gold, problem


def item_ids(job: Job, rows: list[ResultRow], stored: dict[str, str]) -> dict[int, str]:
    """Each row's item external id, by line (see the module doc); ``stored``: the job's items' content hashes."""
    by_hash: dict[str, str] = {}
    for external_id, digest in stored.items():
        by_hash.setdefault(digest, external_id)
    ids: dict[int, str] = {}
    for row in rows:
        named = next((row.inputs[k].strip() for k in ITEM_ID_INPUTS if row.inputs.get(k, "").strip()), "")
        if named or not any(value.strip() for value in row.inputs.values()):
            ids[row.line] = named or row.hit_id
            continue
        by_content = content_id(list(row.inputs.values()))
        content, _, _ = _content(job, row)
        if by_content in stored:
            ids[row.line] = by_content
        elif row.hit_id in stored and same_content(stored[row.hit_id], content):  # imported before content ids
            ids[row.line] = row.hit_id
        else:  # an item of another HIT (or file) with the same content, else a new one
            found = by_hash.get(payload_hash(content)) or by_hash.get(payload_hash(content, canonical=False))
            ids[row.line] = found or by_content
    return ids


def write_items(
    job: Job, rows: list[ResultRow], skip: dict[int, str], item_ids: dict[int, str], existing: dict[str, str]
) -> int:
    """Create the rows' missing items; rows whose item clashes with stored content go into ``skip``.

    An ``Input.gold`` value makes the item a gold question with that known answer, as in the item import
    (and with the same content hash, so either import recognises the other's items)."""
    new: dict[str, tuple[dict[str, Any], str, Any]] = {}
    for row in rows:
        external_id = item_ids[row.line]
        payload = _payload(row)
        content, gold, problem = _content(job, row)
        digest = payload_hash(content)
        if problem:
            skip[row.line] = f"Input.{problem}"
        elif len(external_id) > MAX_EXTERNAL_ID:
            skip[row.line] = f"the item id is longer than {MAX_EXTERNAL_ID} characters"
        elif (external_id in existing and not same_content(existing[external_id], content)) or new.get(
            external_id, (payload, digest)
        )[1] != digest:
            skip[row.line] = f"item {external_id!r} already exists in this job with different Input.* values"
        elif external_id not in existing:
            new[external_id] = (payload, digest, gold)
    Item.objects.bulk_create(
        [
            Item(
                job=job,
                external_id=eid,
                payload=payload,
                payload_hash=digest,
                is_gold=gold is not None,
                gold_answer=gold,
            )
            for eid, (payload, digest, gold) in new.items()
        ],
        batch_size=2000,
        ignore_conflicts=True,
    )
    return len(new)


def write_raw_results(job: Job, rows: list[ResultRow], source: str) -> int:
    """Keep each row's answer fields and HIT columns; a reviewed row refreshes its columns (e.g. ApprovalTime),
    and any row whose answer fields differ from the kept copy (one a damaged earlier file cut short) refreshes
    them. Returns how many kept copies were refreshed."""
    ids = dict(
        Assignment.objects.filter(
            job=job, marketplace=MARKETPLACE, external_id__in=[r.assignment_id for r in rows]
        ).values_list("external_id", "id")
    )
    kept = set(RawResult.objects.filter(assignment_id__in=ids.values()).values_list("assignment_id", flat=True))
    RawResult.objects.bulk_create(
        [
            RawResult(assignment_id=ids[r.assignment_id], job=job, answers=r.answers, columns=r.columns, source=source)
            for r in rows
            if r.assignment_id in ids and ids[r.assignment_id] not in kept
        ],
        batch_size=2000,
        ignore_conflicts=True,
    )
    again = {ids[r.assignment_id]: r for r in rows if ids.get(r.assignment_id) in kept}
    changed = []
    for raw in RawResult.objects.filter(assignment_id__in=list(again)).only(
        "id", "assignment_id", "columns", "answers"
    ):
        row = again[raw.assignment_id]
        columns = row.columns if row.status != "submitted" else raw.columns
        if raw.columns != columns or raw.answers != row.answers:
            raw.columns, raw.answers = columns, row.answers
            changed.append(raw)
    RawResult.objects.bulk_update(changed, ["columns", "answers"], batch_size=2000)
    return len(changed)
