"""Reading answer and gold CSV files, writing consensus CSV files (pure; no Django).

``read_answers_csv`` has a fast path in plain numpy for the common case (UTF-8, no quotes, exactly
the columns ``task,worker,label`` in any order): it splits the bytes at commas and newlines and
factorises each column by hashing its bytes eight at a time, with no Python object per row.  Any
other file (quotes, extra columns, ...) goes through the standard ``csv`` module.  Both paths give the same
:class:`Answers` and the same errors.

Errors are :class:`InputError` whose message is one sentence naming the file and line.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from io import StringIO
from pathlib import Path

import numpy as np
import numpy.typing as npt

from tasks.aggregation.base import Answers, FloatArray, IntArray, ObjArray
from tasks.aggregation.hashing import factorise_ints, first_appearance_order

ANSWER_COLUMNS = ("task", "worker", "label")
GOLD_COLUMNS = ("task", "label")
_CHUNK_ROWS = 1 << 20


class InputError(ValueError):
    """The input file cannot be used; the message names the file and, where known, the line."""


# ----------------------------------------------------------------------------- reading
def read_answers_csv(
    path: str | Path, *, classes: Sequence[str] | None = None, extra_labels: Sequence[str] = ()
) -> Answers:
    """Read ``task,worker,label`` rows (values kept as strings, blank lines ignored)."""
    data = _read_bytes(path)
    columns = _fast_columns(data, path, ANSWER_COLUMNS)
    if columns is None:
        columns = _csv_columns(data, path, ANSWER_COLUMNS)
    (t, tn), (w, wn), (y, yn) = columns
    return Answers.from_codes(t, w, y, tn, wn, yn, classes=classes, extra_labels=extra_labels)


def read_gold_csv(path: str | Path) -> dict[str, str]:
    """Read ``task,label`` rows into a dict (a task listed twice keeps its last label)."""
    data = _read_bytes(path)
    columns = _fast_columns(data, path, GOLD_COLUMNS)
    if columns is None:
        columns = _csv_columns(data, path, GOLD_COLUMNS)
    (t, tn), (y, yn) = columns
    return {tn[i]: yn[j] for i, j in zip(t.tolist(), y.tolist(), strict=True)}


def _read_bytes(path: str | Path) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({exc.strerror or exc}).") from exc
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data.strip():
        raise InputError(f"{path}: the file is empty; expected a header line.")
    return data


def _check_header(fields: list[str], path: str | Path, wanted: Sequence[str]) -> None:
    missing = [c for c in wanted if c not in fields]
    if missing:
        raise InputError(
            f"{path} line 1: missing column(s) {', '.join(missing)}; the header must name "
            f"{','.join(wanted)} (found {','.join(fields) or 'nothing'})."
        )


def _fast_columns(data: bytes, path: str | Path, wanted: Sequence[str]) -> list[tuple[IntArray, list[str]]] | None:
    """Split and factorise in numpy; None when the file needs a real CSV parser."""
    if b'"' in data or b"\0" in data:
        return None
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
        if b"\r" in data:
            return None
    if not data.endswith(b"\n"):
        data += b"\n"
    header_end = data.index(b"\n")
    try:
        header = [h.strip() for h in data[:header_end].decode("utf-8").split(",")]
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} line 1: the header is not UTF-8 text.") from exc
    _check_header(header, path, wanted)
    if sorted(header) != sorted(wanted):
        return None  # extra columns: let the csv module pick the wanted ones
    n_fields = len(wanted)
    padded = data + b"\0" * 8
    buf = np.frombuffer(padded, dtype=np.uint8)[: len(data)]
    seps = np.flatnonzero(_SEPARATOR[buf])  # one table lookup per byte: comma or newline
    seps = seps[int(np.searchsorted(seps, header_end, side="right")) :]
    if len(data) < 2**31 - 8:
        seps = seps.astype(np.int32)  # halves the memory of every offset array below
    kinds = buf[seps]
    pattern = np.array([44] * (n_fields - 1) + [10], dtype=np.uint8)
    line_no: IntArray | None = None  # None: row i is on line i + 2
    if seps.size % n_fields == 0 and seps.size and bool((kinds.reshape(-1, n_fields) == pattern).all()):
        # the common case: every line holds exactly n_fields - 1 commas, no blank line
        grid = seps.reshape(-1, n_fields)
        starts = np.empty(grid.shape[0], dtype=seps.dtype)
        starts[0] = header_end + 1
        np.add(grid[:-1, -1], 1, out=starts[1:])
        bounds = [starts, *(grid[:, j] for j in range(n_fields))]
    else:
        bounds, line_no = _general_bounds(buf, header_end, n_fields, path)
    del seps, kinds
    out: list[tuple[IntArray, list[str]]] = []
    order = [header.index(c) for c in wanted]
    for j in order:
        lo = bounds[j] + 1 if j > 0 else bounds[j]
        hi = bounds[j + 1]
        empty = hi == lo
        if empty.any():
            i = int(np.argmax(empty))
            line = i + 2 if line_no is None else int(line_no[i])
            raise InputError(f"{path} line {line}: the {header[j]} value is empty.")
        del empty
        codes, first, names = _factorise_spans(padded, lo, hi)
        if names is None:
            try:
                names = [data[a:b].decode("utf-8") for a, b in zip(lo[first].tolist(), hi[first].tolist(), strict=True)]
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}: the {header[j]} column is not UTF-8 text.") from exc
        out.append((codes, names))
    return out


_SEPARATOR = np.zeros(256, dtype=bool)
_SEPARATOR[[10, 44]] = True
_LOW_BYTES = np.array([(1 << (8 * i)) - 1 for i in range(8)] + [2**64 - 1], dtype=np.uint64)


def _factorise_spans(padded: bytes, lo: IntArray, hi: IntArray) -> tuple[IntArray, IntArray, list[str] | None]:
    """Codes (in order of first appearance) of the byte strings ``padded[lo[i]:hi[i]]``, the row of
    each code's first appearance and, when every string fits in eight ASCII bytes, their names.

    Strings are compared eight bytes at a time: an unaligned ``uint64`` view of the buffer (which
    ends with eight padding bytes) reads each word in one gather; bytes past the end of the string
    are masked to zero (the caller has checked the data holds no NUL byte); per-word codes are
    combined and factorised again."""
    length = hi - lo
    words: npt.NDArray[np.uint64] = np.ndarray(shape=(len(padded) - 7,), dtype=np.uint64, buffer=padded, strides=(1,))
    codes = np.zeros(0, dtype=np.int64)
    n_codes = 0
    n_words = int((int(length.max()) + 7) // 8)
    value = np.zeros(0, dtype=np.uint64)
    for word in range(n_words):
        if word == 0:
            at, remaining = lo, np.minimum(length, 8)
        else:
            at = np.minimum(lo + 8 * word, words.size - 1)
            remaining = np.clip(length - 8 * word, 0, 8)
        value = words[at]
        value &= _LOW_BYTES[remaining]
        del at, remaining
        word_codes, n_word = factorise_ints(value)
        if word == 0:
            codes, n_codes = word_codes, n_word
        else:
            codes *= n_word
            codes += word_codes
            codes, n_codes = factorise_ints(codes)
    codes, first = first_appearance_order(codes, n_codes)
    names: list[str] | None = None
    if n_words == 1:
        raw = value[first].view("S8")
        try:
            names = raw.astype("U8").tolist()
        except UnicodeDecodeError:
            names = None
    return codes, first, names


def _general_bounds(
    buf: npt.NDArray[np.uint8], header_end: int, n_fields: int, path: str | Path
) -> tuple[list[IntArray], IntArray]:
    """Field boundaries when some lines are blank or malformed (errors name the first bad line)."""
    newlines = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], newlines[:-1] + 1))[1:]
    ends = newlines[1:]
    line_no = np.arange(2, starts.size + 2)
    commas = np.flatnonzero(buf == 44)
    first_comma = np.searchsorted(commas, starts)
    n_commas = np.searchsorted(commas, ends) - first_comma
    blank = ends == starts
    bad = ~blank & (n_commas != n_fields - 1)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{path} line {int(line_no[i])}: expected {n_fields} fields, found {int(n_commas[i]) + 1}.")
    keep = ~blank
    starts, ends, line_no, first_comma = starts[keep], ends[keep], line_no[keep], first_comma[keep]
    if starts.size == 0:
        raise InputError(f"{path}: no rows after the header line.")
    return [starts, *(commas[first_comma + j] for j in range(n_fields - 1)), ends], line_no


def _csv_columns(data: bytes, path: str | Path, wanted: Sequence[str]) -> list[tuple[IntArray, list[str]]]:
    """The general path (quoted fields, extra columns, ...): the standard ``csv`` module, row by row."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: the file is not UTF-8 text.") from exc
    reader = csv.reader(StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
        _check_header(header, path, wanted)
        positions = [header.index(c) for c in wanted]
        lookups: list[dict[str, int]] = [{} for _ in wanted]
        codes: list[list[int]] = [[] for _ in wanted]
        for row in reader:
            if not row or all(v == "" for v in row):
                continue
            if len(row) != len(header):
                raise InputError(f"{path} line {reader.line_num}: expected {len(header)} fields, found {len(row)}.")
            for j, pos in enumerate(positions):
                value = row[pos]
                if value == "":
                    raise InputError(f"{path} line {reader.line_num}: the {wanted[j]} value is empty.")
                codes[j].append(lookups[j].setdefault(value, len(lookups[j])))
    except csv.Error as exc:
        raise InputError(f"{path} line {reader.line_num}: not readable as CSV ({exc}).") from exc
    if not codes[0]:
        raise InputError(f"{path}: no rows after the header line.")
    return [(np.array(c, dtype=np.int64), list(lk)) for c, lk in zip(codes, lookups, strict=True)]


# ----------------------------------------------------------------------------- writing
def format_confidence(confidence: FloatArray, decimals: int = 6) -> ObjArray:
    """Confidences as fixed-point strings; each distinct value is formatted once."""
    scaled = np.rint(np.clip(confidence, 0.0, 1.0) * 10**decimals).astype(np.int64)
    codes, n_codes = factorise_ints(scaled)  # hashing, not sorting
    uniq = np.empty(n_codes, dtype=np.int64)
    uniq[codes] = scaled
    text = np.array([f"{u / 10**decimals:.{decimals}f}" for u in uniq.tolist()], dtype=object)
    return text[codes]


def write_consensus_csv(path: str | Path, tasks: ObjArray, labels: ObjArray, confidence: FloatArray) -> None:
    """Write ``task,label,confidence`` (values are written as they are: ids without commas or
    quotes need no quoting; anything else is quoted CSV-style)."""
    conf = format_confidence(confidence)
    task_list = tasks.tolist()
    try:
        joined = "\0".join(task_list)
    except TypeError:  # ids that are not strings
        task_list = [str(t) for t in task_list]
        joined = "\0".join(task_list)
    if any(ch in joined for ch in ',"\n\r'):
        task_list = [_csv_field(t) for t in task_list]
    raw_labels = labels.tolist()
    label_text = {v: _csv_field(str(v)) for v in set(raw_labels)}
    label_list = list(map(label_text.__getitem__, raw_labels))
    conf_list = conf.tolist()
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("task,label,confidence\n")
        for a in range(0, len(task_list), _CHUNK_ROWS):
            b = a + _CHUNK_ROWS
            rows = zip(task_list[a:b], label_list[a:b], conf_list[a:b], strict=True)
            fh.write("\n".join(map(",".join, rows)))
            fh.write("\n")


def _csv_field(value: str) -> str:
    if any(ch in value for ch in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value
