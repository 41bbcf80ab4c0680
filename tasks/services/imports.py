"""Item import from CSV or JSON Lines: the one path the admin, the REST API and the CLI share.

The whole file is parsed and validated before anything is written. Bad rows are reported with their
line numbers and nothing is written; rows whose item already exists with the same content are
skipped, so re-importing a file is a no-op; new rows are written in bulk (COPY on PostgreSQL).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from tasks.models import Item, Job, JobState, Prediction
from tasks.services import hits as hit_services
from tasks.services.bulk import bulk_insert
from tasks.services.csvtext import records
from tasks.services.errors import ImportValidationError, RowError, ServiceError
from workforce.audit import Actor, record_audit_event
from workforce.jsonlimits import MAX_JSON_DEPTH, TooDeep, load_storable

MAX_EXTERNAL_ID = 255
ID_COLUMNS = ("external_id", "id")
CONTENT_IDS = ":content"  # ``id_column`` value: each row's id is a digest of its cells (files without ids)
FORMATS = ("csv", "jsonl")
_URL_PREFIXES = ("http://", "https://", "data:image/", "/")


@dataclass
class ImportResult:
    created: int = 0
    unchanged: int = 0
    hits_created: int = 0
    rows: int = 0
    gold: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    line: int
    external_id: str
    payload: dict[str, Any]
    legacy_id: str = ""  # a content id as imports before numbers were canonical made it, where it differs


def detect_format(filename: str, fmt: str | None = None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise ServiceError(f"Unknown format {fmt!r}; use one of: {', '.join(FORMATS)}.")
        return fmt
    suffix = Path(filename).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise ServiceError(f"Cannot tell the format of {filename!r}: name it .csv or .jsonl, or give the format.")


# A decimal numeral as spreadsheets and toolkits rewrite it ("5" <-> "5.0"): no sign but "-", no leading zero, no
# exponent. Other text ("05", "1e3", " 5") is left as it is: it may be a code, not a number.
_NUMERAL = re.compile(r"(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?")


def canonical_cell(value: str) -> str:
    """A numeral's shortest form (``5.0`` -> ``5``, ``0.50`` -> ``0.5``, ``-0`` -> ``0``); other text unchanged."""
    match = _NUMERAL.fullmatch(value)
    if match is None:
        return value
    sign, whole, fraction = match.group(1), match.group(2), (match.group(3) or "").rstrip("0")
    number = f"{whole}.{fraction}" if fraction else whole
    return number if number == "0" else sign + number


def payload_hash(payload: dict[str, Any], *, canonical: bool = True) -> str:
    """The digest that tells an item's content apart: string values that are numerals compare by their shortest
    form (an input file's ``5.0`` is a results file's ``5``). Content without such numerals hashes as before
    numbers were canonical; ``canonical=False`` gives that older digest for any content (items stored then)."""
    if canonical:
        payload = {k: canonical_cell(v) if isinstance(v, str) else v for k, v in payload.items()}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def same_content(stored_hash: str, payload: dict[str, Any]) -> bool:
    """Whether an item stored with ``stored_hash`` holds ``payload``, whichever digest it was stored with."""
    return stored_hash in (payload_hash(payload), payload_hash(payload, canonical=False))


def _text_lines(stream: IO[bytes] | IO[str]) -> Iterator[str]:
    """Yield decoded lines; a byte stream is read as UTF-8 (a BOM is dropped)."""
    sample = stream.read(0)
    if isinstance(sample, bytes):
        reader = codecs.getreader("utf-8-sig")(stream, "strict")  # type: ignore[arg-type]
        text_stream: IO[str] = reader  # type: ignore[assignment]
    else:
        text_stream = stream  # type: ignore[assignment]
    line = 0
    try:
        for chunk in iter(lambda: text_stream.readline(), ""):
            line += 1
            yield chunk
    except UnicodeDecodeError as exc:
        raise ImportValidationError([RowError(line + 1, "the file is not valid UTF-8")]) from exc
    if getattr(text_stream, "bytebuffer", b""):  # the decoder drops a character cut off by the end of the file
        raise ImportValidationError(
            [RowError(max(line, 1), "the file ends inside a UTF-8 character, so it looks cut off; upload it again")]
        )


def content_id(values: list[str], *, canonical: bool = True) -> str:
    """A row's id from its cells alone (an MTurk batch input file has none): the same row always gets the
    same id, so importing the file again adds nothing, and rows differing in any cell get different ids.
    Numerals count by their shortest form (``canonical_cell``), so a row holding ``5.0`` and one holding ``5``
    are one item; a row without such numerals keeps the id it had before (``canonical=False`` gives that)."""
    cells = [canonical_cell(v) for v in values] if canonical else values
    return "row-" + hashlib.sha256("\x1f".join(cells).encode()).hexdigest()[:20]


def _cut_off(start: int) -> RowError:
    return RowError(
        start,
        "the file ends inside a quoted field of the row that starts on this line, so it looks cut off (an interrupted "
        "upload or download?); import the whole file again, or close the quote if it was left open",
    )


def _empty(values: list[str]) -> bool:
    """A row of empty cells only (one of spaces is a row, and fails as one)."""
    return all(v == "" for v in values)


def _parse_csv(stream: IO[bytes] | IO[str], id_column: str | None = None) -> Iterator[_Row | RowError]:
    # strict: a quoted field the end of the file cuts off raises instead of coming back as a shorter cell.
    reader = csv.reader(_text_lines(stream), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportValidationError([RowError(1, "the file is empty")]) from None
    except csv.Error as exc:
        if "end of data" in str(exc):
            raise ImportValidationError([_cut_off(1)]) from None
        raise ImportValidationError([RowError(1, f"unreadable header ({exc})")]) from None
    header = [h.strip() for h in header]
    if id_column is None:
        id_col = next((c for c in ID_COLUMNS if c in header), None)
        if id_col is None:
            raise ImportValidationError(
                [
                    RowError(
                        1,
                        "the header needs an 'external_id' (or 'id') column; name another column as the id, or "
                        "derive ids from each row's content (a file without ids, such as an MTurk batch input)",
                    )
                ]
            )
    elif id_column != CONTENT_IDS and id_column not in header:
        raise ImportValidationError([RowError(1, f"the header has no column {id_column!r} to take ids from")])
    else:
        id_col = id_column
    dupes = {h for h in header if header.count(h) > 1}
    if dupes:
        raise ImportValidationError([RowError(1, f"duplicate column(s) in the header: {', '.join(sorted(dupes))}")])
    id_index = header.index(id_col) if id_col != CONTENT_IDS else -1
    for record in records(reader, blank=_empty):
        if record.error is not None:
            yield (
                _cut_off(record.start)
                if record.cut_short
                else RowError(record.line, f"unreadable row ({record.error})")
            )
            continue
        line, values = record.line, record.values
        if len(values) != len(header):
            yield RowError(line, f"expected {len(header)} columns, found {len(values)}")
            continue
        payload = {h: v for i, (h, v) in enumerate(zip(header, values, strict=True)) if i != id_index}
        if id_index >= 0:
            yield _Row(line, values[id_index].strip(), payload)
            continue
        external_id, legacy_id = content_id(values), content_id(values, canonical=False)
        yield _Row(line, external_id, payload, legacy_id if legacy_id != external_id else "")


def load_json_line(raw: str) -> Any:
    """One line of a JSON Lines import; ``ValueError`` with the reason when it is not JSON, is nested too
    deeply to read, or holds a number a database column cannot store exactly (NaN, Infinity, 1e999)."""
    try:
        return load_storable(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg})") from exc
    except TooDeep as exc:
        past_the_parser = isinstance(exc.__cause__, RecursionError)  # too deep to read at all: no level to name
        levels = "" if past_the_parser else f" (more than {MAX_JSON_DEPTH} levels)"
        raise ValueError(f"the JSON is nested too deeply{levels}") from exc


def _parse_jsonl(stream: IO[bytes] | IO[str]) -> Iterator[_Row | RowError]:
    for line, raw in enumerate(_text_lines(stream), start=1):
        if not raw.strip():
            continue
        try:
            obj = load_json_line(raw)
        except ValueError as exc:
            yield RowError(line, str(exc))
            continue
        if not isinstance(obj, dict):
            yield RowError(line, "each line must be a JSON object")
            continue
        id_key = next((k for k in ID_COLUMNS if k in obj), None)
        if id_key is None:
            yield RowError(line, "the object needs an 'external_id' (or 'id') field")
            continue
        ext = obj.pop(id_key)
        if not isinstance(ext, str | int) or isinstance(ext, bool):
            yield RowError(line, f"'{id_key}' must be a string or an integer")
            continue
        payload = obj.pop("payload") if isinstance(obj.get("payload"), dict) and len(obj) == 1 else obj
        yield _Row(line, str(ext).strip(), payload)


def _check_payload(job: Job, payload: dict[str, Any], layout_fields: list[str] | None) -> str | None:
    if layout_fields is not None:  # an MTurk layout draws its own fields: each of its ${...} must be in the row
        missing = [name for name in layout_fields if name not in payload]
        return f"the job's layout uses ${{{missing[0]}}}, which this row does not have" if missing else None
    if job.is_image:
        url = payload.get("image_url")
        if not isinstance(url, str) or not url.strip():
            return "an image job needs a non-empty 'image_url'"
        if not url.startswith(_URL_PREFIXES):
            return f"'image_url' must be an http(s) URL, a data:image URI or a site path, not {url[:60]!r}"
        if job.is_shapes:
            from tasks.services.shapes import image_size

            if image_size(payload) is None:
                return "a drawing job needs the image's 'width' and 'height' in pixels (positive numbers)"
    else:
        text = payload.get("text")
        if not isinstance(text, str) or not text.strip():
            return "a text job needs a non-empty 'text'"
    return None


GOLD_COLUMN = "gold"


def _has_nul(value: Any) -> bool:
    """Whether a NUL character hides anywhere in a row (PostgreSQL text and jsonb cannot store one)."""
    stack = [value]  # walked without recursion, however deep the row nests
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


_NewRow = tuple[str, dict[str, Any], str, Any]


def parse_gold_answer(job: Job, raw: Any) -> tuple[Any, str | None]:
    """The known answer from a row's ``gold`` value (None when the row is an ordinary item), or an error."""
    if raw is None or raw == "" or raw == []:
        return None, None
    labels = [str(label) for label in job.labels]
    if job.is_shapes:
        from tasks.services.errors import SubmissionRefused
        from tasks.services.shapes import validate_shapes

        try:
            return validate_shapes(job.task_kind, labels, raw, (math.inf, math.inf)), None
        except SubmissionRefused as refusal:
            return None, f"the gold drawing is not valid: {refusal}"
    if job.is_multilabel:
        values = raw if isinstance(raw, list) else [v.strip() for v in str(raw).split("|") if v.strip()]
        unknown = [v for v in values if v not in labels]
        if unknown:
            return None, f"gold label(s) {', '.join(map(str, unknown))} are not in the job's labels"
        return [label for label in labels if label in values], None
    if not isinstance(raw, str) or raw not in labels:
        return None, f"gold label {raw!r} is not one of the job's labels ({', '.join(labels)})"
    return raw, None


def _validate(job: Job, parsed: Iterator[_Row | RowError]) -> tuple[list[_NewRow], int, int]:
    """Return (new rows, unchanged count, total rows), or raise with every bad line."""
    existing = dict(Item.objects.filter(job=job).values_list("external_id", "payload_hash").iterator(chunk_size=20000))
    seen: dict[str, int] = {}
    new: list[_NewRow] = []
    errors: list[RowError] = []
    bad = unchanged = total = 0
    limit = settings.IMPORT_MAX_REPORTED_ERRORS
    from tasks.services.task_templates import template_variables  # it imports the results schema, which imports us

    layout_fields = template_variables(job.task_template) if job.task_template else None  # read once, not per row
    for row in parsed:
        total += 1
        if isinstance(row, _Row) and row.legacy_id and row.legacy_id in existing:  # stored before canonical numbers
            row = replace(row, external_id=row.legacy_id)
        problem: RowError | None = row if isinstance(row, RowError) else None
        if isinstance(row, _Row):
            if not row.external_id:
                problem = RowError(row.line, "the id is empty")
            elif len(row.external_id) > MAX_EXTERNAL_ID:
                problem = RowError(row.line, f"the id is longer than {MAX_EXTERNAL_ID} characters")
            elif row.external_id in seen:
                problem = RowError(row.line, f"id {row.external_id!r} already appears on line {seen[row.external_id]}")
            elif _has_nul(row.external_id) or _has_nul(row.payload):
                problem = RowError(row.line, "the row contains a NUL character (\\u0000), which cannot be stored")
            elif (message := _check_payload(job, row.payload, layout_fields)) is not None:
                problem = RowError(row.line, message)
            elif (gold_parsed := parse_gold_answer(job, row.payload.get(GOLD_COLUMN)))[1] is not None:
                problem = RowError(row.line, gold_parsed[1])
            else:
                seen[row.external_id] = row.line
                # The known answer never stays in the payload, which workers' pages draw from.
                row.payload.pop(GOLD_COLUMN, None)
                gold = gold_parsed[0]
                content = row.payload if gold is None else {**row.payload, "\u0000gold": gold}
                digest = payload_hash(content)
                known = existing.get(row.external_id)
                if known is None:
                    new.append((row.external_id, row.payload, digest, gold))
                elif same_content(known, content):
                    unchanged += 1
                else:
                    problem = RowError(
                        row.line, f"item {row.external_id!r} already exists in this job with different content"
                    )
        if problem is not None:
            bad += 1
            if len(errors) < limit:
                errors.append(problem)
    if bad:
        raise ImportValidationError(errors, total_bad=bad)
    if total == 0:
        raise ImportValidationError([RowError(1, "the file has no rows")])
    return new, unchanged, total


def check_upload_size(size: int | None, *, command: str) -> None:
    """Refuse an upload larger than ``IMPORT_MAX_UPLOAD_BYTES`` (None: not an upload, no limit); ``command``
    names the management command that imports a local file of any size."""
    if size is not None and size > settings.IMPORT_MAX_UPLOAD_BYTES:
        raise ServiceError(
            f"The file is {size / 1e6:.1f} MB; uploads are limited to {settings.IMPORT_MAX_UPLOAD_BYTES / 1e6:.0f} MB. "
            f"Split it, or import it with `python manage.py {command}`."
        )


_WRITE_ATTEMPTS = 3


def _refuse_closed(job_id: int, state: str) -> None:
    if state in (JobState.COMPLETED, JobState.CANCELLED):
        raise ServiceError(f"Job {job_id} is {state}; items can only be added to draft, published or paused jobs.")


class _HitsAdded(Exception):
    """Hits the import may re-rank were added between locking the job's Hits and locking its row."""


def _reranks(job_id: int, prelabel_model: str) -> bool:
    """Whether building Hits for the job re-ranks its existing Hits: it has a pre-label model or predictions."""
    return bool(prelabel_model) or Prediction.objects.filter(job_id=job_id).exists()


def _lock_rankable_hits(job_id: int) -> int | None:
    """Lock the Hits building Hits may re-rank, in id order, before the job's row (the lock order of every path:
    Hit rows, then the job row); the number locked, or None when the job's Hits are not re-ranked."""
    prelabel_model = Job.objects.filter(pk=job_id).values_list("prelabel_model", flat=True).first()
    if prelabel_model is None or not _reranks(job_id, prelabel_model):
        return None
    return len(list(hit_services.rankable_hits(job_id).select_for_update().order_by("pk").values_list("pk", flat=True)))


def _write(*, job: Job, new: list[_NewRow], result: ImportResult, filename: str, actor: Actor) -> ImportResult:
    """Write the new items (and, in a running job, their Hits) and the audit event, in one transaction; raises
    ``_HitsAdded``, having written nothing, when Hits it did not lock could be re-ranked."""
    now = timezone.now()
    try:
        with transaction.atomic():
            held = _lock_rankable_hits(job.pk)
            # No key update: a predictions import holding a key-share lock on the row (its rows refer to the job)
            # while it waits for these Hits does not hold this one up. Every writer of the job's row, a publish
            # and another import still wait for it.
            locked = Job.objects.select_for_update(no_key=True).get(pk=job.pk)
            _refuse_closed(job.pk, locked.state)  # again under the lock: a cancel may have committed meanwhile
            running = locked.state in (JobState.PUBLISHED, JobState.PAUSED)
            # A publish or another import builds Hits only under the job's row lock, so none builds any from here
            # on; Hits one built since the Hits above were locked (and committed) would be re-ranked below, after
            # the job's row: try again instead, locking them first.
            if (
                running
                and _reranks(job.pk, locked.prelabel_model)
                and held != hit_services.rankable_hits(job.pk).count()
            ):
                raise _HitsAdded
            bulk_insert(
                Item,
                ["job_id", "external_id", "payload", "payload_hash", "is_gold", "gold_answer", "created_at"],
                ((job.pk, ext, payload, digest, gold is not None, gold, now) for ext, payload, digest, gold in new),
            )
            if running:
                result.hits_created = hit_services.build_hits(job=locked, open_now=locked.state == JobState.PUBLISHED)
            record_audit_event(
                actor=actor,
                action="items.imported",
                object_type="job",
                object_id=job.pk,
                after={
                    "file": filename,
                    "created": result.created,
                    "unchanged": result.unchanged,
                    "hits": result.hits_created,
                },
            )
    except IntegrityError as exc:
        raise ServiceError(
            "Another import into this job added some of the same items at the same time; run the import again."
        ) from exc
    return result


def import_items(
    *,
    job: Job,
    stream: IO[bytes] | IO[str],
    filename: str,
    actor: Actor,
    fmt: str | None = None,
    id_column: str | None = None,
) -> ImportResult:
    """Import items into ``job`` from an open file; all or nothing.

    CSV ids come from ``external_id`` (or ``id``), from the column ``id_column`` names, or, with
    ``CONTENT_IDS``, from each row's cells (``content_id``).

    Uploads (anything with a ``size``, as Django's uploaded files) larger than ``IMPORT_MAX_UPLOAD_BYTES``
    are refused before a byte is parsed; the command line reads local files without that limit.
    """
    check_upload_size(getattr(stream, "size", None), command="import_items")
    file_format = detect_format(filename, fmt)
    if id_column is not None and file_format != "csv":
        raise ServiceError("Ids from a named column or from each row's content apply to CSV files only.")
    _refuse_closed(job.pk, job.state)
    parsed = _parse_csv(stream, id_column) if file_format == "csv" else _parse_jsonl(stream)
    new, unchanged, total = _validate(job, parsed)
    result = ImportResult(
        created=len(new), unchanged=unchanged, rows=total, gold=sum(1 for row in new if row[3] is not None)
    )
    if not new:
        return result
    for _ in range(_WRITE_ATTEMPTS):
        try:
            return _write(job=job, new=new, result=result, filename=filename, actor=actor)
        except _HitsAdded:
            continue  # nothing was written: lock the job's Hits again, the added ones too
    raise ServiceError("Hits were being added to this job while it was imported into; run the import again.")


def import_items_from_text(
    *, job: Job, text: str, filename: str, actor: Actor, fmt: str | None = None, id_column: str | None = None
) -> ImportResult:
    return import_items(job=job, stream=io.StringIO(text), filename=filename, actor=actor, fmt=fmt, id_column=id_column)
