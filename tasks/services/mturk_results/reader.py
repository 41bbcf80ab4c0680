"""Reading MTurk requester-UI batch results CSVs (and the flat API dumps some toolkits write).

Header-driven, never positional. Tolerates what real downloads contain: a UTF-8 BOM, CRLF line ends, both
the fully quoted and the minimally quoted dialect, rows that lack only the trailing ``Approve``/``Reject``
cells, no final newline, ``$``-prefixed rewards, and timestamps such as ``Thu Nov 07 16:38:49 PST 2019`` or
ISO 8601 with an offset. Pure: no Django.

A file that is not UTF-8, holds a NUL byte or has no ``AssignmentStatus`` column is refused whole, in one sentence
naming the line or the column. A ``Submitted`` row whose ``AutoApprovalTime`` is already past (``now``) was
approved and paid by MTurk: it is read as approved, reviewed at its AutoApprovalTime (``auto_approved``).

Damage is told apart from rows that merely cannot be taken: a line that is not CSV (a stray quote, a quoted
cell cut off at the end of the file), a row with more cells than the header or fewer than the header without
its trailing ``Approve``/``Reject`` (a truncated download), a row without its ids, and an AssignmentId seen
on an earlier line with other content are ``damage`` (also listed in ``problems``); the importer refuses a
damaged file. Rows repeated verbatim are read once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from tasks.services.csvtext import read_csv_text

# The requester UI's own columns, in its order; everything else is Input.*, Answer.* or Approve/Reject.
STANDARD_COLUMNS = (
    "HITId",
    "HITTypeId",
    "Title",
    "Description",
    "Keywords",
    "Reward",
    "CreationTime",
    "MaxAssignments",
    "RequesterAnnotation",
    "AssignmentDurationInSeconds",
    "AutoApprovalDelayInSeconds",
    "Expiration",
    "NumberOfSimilarHITs",
    "LifetimeInSeconds",
    "AssignmentId",
    "WorkerId",
    "AssignmentStatus",
    "AcceptTime",
    "SubmitTime",
    "AutoApprovalTime",
    "ApprovalTime",
    "RejectionTime",
    "RequesterFeedback",
    "WorkTimeInSeconds",
    "LifetimeApprovalRate",
    "Last30DaysApprovalRate",
    "Last7DaysApprovalRate",
)
DECISION_COLUMNS = ("Approve", "Reject")
ID_COLUMNS = ("HITId", "AssignmentId", "WorkerId")
INPUT_PREFIX = "Input."
ANSWER_PREFIX = "Answer."
STATUSES = {"submitted": "submitted", "approved": "approved", "rejected": "rejected"}

# US zones the requester UI prints (it uses the requester's locale), plus UTC.
_ZONES = {
    "UTC": 0,
    "GMT": 0,
    "Z": 0,
    "PST": -8,
    "PDT": -7,
    "MST": -7,
    "MDT": -6,
    "CST": -6,
    "CDT": -5,
    "EST": -5,
    "EDT": -4,
}
_MTURK_TIME = re.compile(r"^[A-Za-z]{3} ([A-Za-z]{3}) (\d{1,2}) (\d{2}):(\d{2}):(\d{2}) ([A-Z]{1,5}) (\d{4})$")
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, start=1)}


class ResultsFileError(ValueError):
    """The file cannot be read as a results file at all; the message is one sentence."""


def parse_time(text: str) -> datetime | None:
    """An aware datetime from an MTurk or ISO timestamp; None for an empty cell; ValueError otherwise."""
    text = text.strip()
    if not text:
        return None
    match = _MTURK_TIME.match(text)
    if match:
        month, day, hour, minute, second, zone, year = match.groups()
        if zone not in _ZONES or month.title() not in _MONTHS:
            raise ValueError(f"unreadable time {text!r}")
        offset = timezone(timedelta(hours=_ZONES[zone]))
        try:
            moment = datetime(int(year), _MONTHS[month.title()], int(day), int(hour), int(minute), int(second))
        except ValueError:
            raise ValueError(f"unreadable time {text!r}") from None
        return moment.replace(tzinfo=offset).astimezone(UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"unreadable time {text!r}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def format_time(moment: datetime | None) -> str:
    """The requester UI's timestamp format, in UTC."""
    return "" if moment is None else moment.astimezone(UTC).strftime("%a %b %d %H:%M:%S UTC %Y")


def parse_money(text: str) -> Decimal | None:
    text = text.strip().removeprefix("$").replace(",", "").strip()
    if not text:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"unreadable amount {text!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"unreadable amount {text!r}")
    return amount


@dataclass(frozen=True)
class ResultRow:
    line: int
    hit_id: str
    assignment_id: str
    worker_id: str
    status: str
    accepted_at: datetime | None
    submitted_at: datetime | None
    reviewed_at: datetime | None
    reward: Decimal | None
    max_assignments: int | None
    inputs: dict[str, str]
    answers: dict[str, str]
    columns: dict[str, str]  # the other requester-UI columns, verbatim
    auto_approved: bool = False  # Submitted in the file, but its AutoApprovalTime had passed: MTurk approved it


@dataclass
class ResultsFile:
    input_columns: list[str]
    answer_columns: list[str]
    rows: list[ResultRow] = field(default_factory=list)
    problems: list[tuple[int, str, str]] = field(default_factory=list)  # (line, assignment id, reason)
    damage: list[tuple[int, str, str]] = field(default_factory=list)  # the problems that show a damaged file
    repeated_lines: list[int] = field(default_factory=list)  # verbatim repeats of an earlier row, read once

    @property
    def total_rows(self) -> int:
        return len(self.rows) + len(self.problems) + len(self.repeated_lines)

    def add_problem(self, line: int, assignment_id: str, reason: str, *, damage: bool) -> None:
        self.problems.append((line, assignment_id, reason))
        if damage:
            self.damage.append((line, assignment_id, reason))


class _DamagedRow(ValueError):
    """The row shows the file is damaged (not just a row that cannot be taken)."""


def _width_problem(header: list[str], values: list[str]) -> str:
    """Why the row's cell count does not fit the header; empty when it does (trailing decisions may be missing)."""
    if len(values) > len(header) or any(name not in DECISION_COLUMNS for name in header[len(values) :]):
        return f"{len(values)} fields but the header has {len(header)}"
    return ""


def _row(line: int, cells: dict[str, str], api_style: bool, now: datetime | None) -> ResultRow:
    """One data row; raises ValueError with the reason it cannot be taken (``_DamagedRow`` for damage)."""
    hit_id, assignment_id, worker_id = (cells.get(name, "").strip() for name in ID_COLUMNS)
    missing = [name for name, value in zip(ID_COLUMNS, (hit_id, assignment_id, worker_id), strict=True) if not value]
    if missing:
        raise _DamagedRow(f"empty {', '.join(missing)}")
    status_text = cells.get("AssignmentStatus", "").strip()
    status = STATUSES.get(status_text.lower())
    if not status_text:
        raise ValueError("AssignmentStatus is empty")
    if status is None:
        raise ValueError(f"AssignmentStatus {status_text!r} is not Submitted, Approved or Rejected")
    first, second = ("RejectionTime", "ApprovalTime") if status == "rejected" else ("ApprovalTime", "RejectionTime")
    reviewed = parse_time(cells.get(first, "")) or parse_time(cells.get(second, ""))
    auto_approved = False
    if status == "submitted":
        auto_approval = parse_time(cells.get("AutoApprovalTime", ""))
        if now is not None and auto_approval is not None and auto_approval <= now:
            status, reviewed, auto_approved = "approved", auto_approval, True
    max_text = cells.get("MaxAssignments", "").strip()
    if max_text and not (max_text.isascii() and max_text.isdigit()):
        raise ValueError(f"MaxAssignments {max_text!r} is not a whole number")
    if api_style:
        answers = {k: v for k, v in cells.items() if k not in STANDARD_COLUMNS and k not in DECISION_COLUMNS}
        inputs: dict[str, str] = {}
    else:
        answers = {k[len(ANSWER_PREFIX) :]: v for k, v in cells.items() if k.startswith(ANSWER_PREFIX)}
        inputs = {k[len(INPUT_PREFIX) :]: v for k, v in cells.items() if k.startswith(INPUT_PREFIX)}
    return ResultRow(
        line=line,
        hit_id=hit_id,
        assignment_id=assignment_id,
        worker_id=worker_id,
        status=status,
        accepted_at=parse_time(cells.get("AcceptTime", "")),
        submitted_at=parse_time(cells.get("SubmitTime", "")),
        reviewed_at=reviewed if status != "submitted" else None,
        reward=parse_money(cells.get("Reward", "")),
        max_assignments=int(max_text) if max_text else None,
        inputs=inputs,
        answers=answers,
        columns={k: v for k, v in cells.items() if k in STANDARD_COLUMNS and k not in ID_COLUMNS},
        auto_approved=auto_approved,
    )


def check_text(data: bytes, *, error: Callable[[str], Exception], name: str, kind: str, again: str) -> None:
    """Refuse bytes that are not UTF-8 text, or that hold a NUL, naming the line (a database cannot store a NUL).
    Shared by the results and bonus readers: ``name`` is how the sentence names the file, ``kind`` what it must
    be (``results file``), ``again`` how to get a good copy (``download it again from MTurk``)."""
    body = data.removeprefix(b"\xef\xbb\xbf")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body.count(b"\n", 0, exc.start) + 1
        raise error(
            f"{name} is not UTF-8 text: line {line} has a byte (0x{body[exc.start]:02x}) that UTF-8 cannot decode; "
            f"a {kind} must be UTF-8, so {again} or save it as UTF-8."
        ) from None
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise error(
            f"{name} holds a NUL byte on line {line}, which no {kind} has (a UTF-16 or binary file?); "
            f"a {kind} must be UTF-8 text, so {again}."
        )


def read_results(data: bytes, *, now: datetime | None = None) -> ResultsFile:
    """Parse a whole results file. Bad rows become ``problems``; a file that is not a results file raises.
    ``now``: the moment Submitted rows past their AutoApprovalTime count as approved (None: never)."""
    check_text(data, error=ResultsFileError, name="The file", kind="results file", again="download it again from MTurk")
    header, records = read_csv_text(
        data,
        error=ResultsFileError,
        not_utf8="The file is not UTF-8 text; download the results CSV again from MTurk.",
        empty="The file is empty.",
        bad_header="The header line is not readable CSV",
    )
    missing = [name for name in ID_COLUMNS if name not in header]
    if missing:
        raise ResultsFileError(
            f"The header has no {', '.join(missing)} column, so this is not an MTurk results file "
            "(an input or bonus CSV cannot be imported as results)."
        )
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise ResultsFileError(f"The header repeats the column(s) {', '.join(dupes)}.")
    api_style = not any(h.startswith((INPUT_PREFIX, ANSWER_PREFIX)) for h in header)
    if api_style:
        answer_columns = [h for h in header if h not in STANDARD_COLUMNS and h not in DECISION_COLUMNS]
        input_columns: list[str] = []
    else:
        answer_columns = [h[len(ANSWER_PREFIX) :] for h in header if h.startswith(ANSWER_PREFIX)]
        input_columns = [h[len(INPUT_PREFIX) :] for h in header if h.startswith(INPUT_PREFIX)]
    if not answer_columns:
        raise ResultsFileError("The file has no Answer.* columns, so there is no work to import.")
    if "AssignmentStatus" not in header:
        raise ResultsFileError(
            "The header has no AssignmentStatus column, so whether each assignment was submitted, approved or "
            "rejected is unknown; download the full results file from MTurk."
        )
    result = ResultsFile(input_columns=input_columns, answer_columns=answer_columns)
    seen: dict[str, tuple[int, dict[str, str]]] = {}  # assignment id -> (first line, its cells)
    for record in records:
        line, values = record.line, record.values
        if record.error is not None:
            cut = "the file ends inside a quoted cell (cut short?)"
            reason = cut if record.cut_short else f"unreadable CSV ({record.error})"
            result.add_problem(line, "", reason, damage=True)
            continue
        width = _width_problem(header, values)
        if width:
            result.add_problem(line, "", width, damage=True)
            continue
        # A row that lacks only its trailing Approve/Reject cells: they are empty.
        cells = dict(zip(header, values + [""] * (len(header) - len(values)), strict=True))
        assignment_id = cells.get("AssignmentId", "").strip()
        if assignment_id in seen:
            first_line, first_cells = seen[assignment_id]
            if first_cells == cells:
                result.repeated_lines.append(line)
            else:
                reason = f"AssignmentId {assignment_id} is also on line {first_line}, with other content"
                result.add_problem(line, assignment_id, reason, damage=True)
            continue
        try:
            result.rows.append(_row(line, cells, api_style, now))
        except ValueError as exc:
            result.add_problem(line, assignment_id, str(exc), damage=isinstance(exc, _DamagedRow))
        if assignment_id:
            seen[assignment_id] = (line, cells)
    if not result.rows and not result.problems and not result.repeated_lines:
        raise ResultsFileError("The file has a header but no rows.")
    return result
