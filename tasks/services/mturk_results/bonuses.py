"""``import_mturk_bonuses``: bonuses paid on MTurk before the move, from a bonus CSV, booked in the ledger.

Reads the bulk-bonus file toolkits pay from (``workerId,assignmentId,bonusAmount,reason``, as Microsoft's
P.808 writes it) and ListBonusPayments flattened to CSV (``WorkerId,BonusAmount,AssignmentId,Reason,GrantTime``).
Columns are found by name, case and punctuation ignored (``Worker ID`` = ``workerId``); ``reason`` and
``GrantTime`` are optional. Amounts are whole cents, with or without a ``$``.

Each bonus is booked as two ``charged`` USD rows, the bonus and MTurk's fee on it
(``mturk_fees.bonus_fee``, 20%, at least $0.01), with no budget reservation (the money was spent before the
move), their ``memo`` marked as imported history (``mturk_history_costs.IMPORTED_MEMO``) plus the reason.
The keys are ``bonus:mturk:<AssignmentId>:<content>:<grant time or ->`` (and ``:fee``), the content a
digest of the row's worker, amount and reason: re-importing a file (or a re-export in another order) books
nothing, two bonuses on one assignment that differ in amount, reason or grant time are both kept, and a line
repeated verbatim is read once (reported in ``repeated_lines``). The same bonus in the bulk file and in
ListBonusPayments is booked once, whichever is imported first (``bonus_matching``; a booking without a
grant time is replaced by the dated one when the other file gives the time: booked dated, the undated rows
reversed, counted in ``dated_from_file``).

Linking: a bonus whose assignment is recorded in the job is linked to it, its HIT and its worker. An
assignment not recorded here (its batch was never imported) does not stop the booking: the bonus is booked on
the job and linked to its worker (created as an MTurk worker when new), and the row is reported in
``rows_unlinked``. A row is skipped and reported in ``rows_skipped`` when its assignment belongs to another job
or to another worker than the row names. A bonus paid through this app (an ``MTurkBonus`` of the same
assignment, amount and reason) is already in the ledger and is not booked again.

A file that cannot be read as a bonus file (not UTF-8, a NUL byte, no worker/assignment/amount column, a line
that is not CSV or has another number of cells than the header, an empty id, an amount that is not a positive
number of whole cents, an unreadable grant time) is refused whole, naming its first bad line; nothing is written.
So is a file cut off inside its last row (a truncated download): a quoted cell the file ends inside, or a last
row with no line end. An unquoted last cell cut short reads as a whole cell (a shorter reason is another bonus's
content), so a bonus file must end with a line break (csv writers, pandas and spreadsheets write one); booked
from a cut file, the bonus would be booked again from the whole one.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from tasks.models import Assignment, CostKind, CostStatus, Job, MTurkBonus
from tasks.services.csvtext import read_csv_text
from tasks.services.errors import ServiceError
from tasks.services.ledger import CostLine, bonus_cost_key, record_costs
from tasks.services.mturk_history_costs import CURRENCY, MTURK, ZERO, check_usd_job, imported_memo
from tasks.services.mturk_results.bonus_matching import (
    bonus_key,
    content_digest,
    legacy_bonus_key,
    reverse_claimed,
    unbooked,
)
from tasks.services.mturk_results.reader import check_text, parse_time
from workforce.audit import Actor, record_audit_event
from workforce.marketplaces.mturk_fees import bonus_fee
from workforce.models import Worker
from workforce.services import get_or_create_workers

CENT = Decimal("0.01")
# Normalised header name -> our field. ListBonusPayments: WorkerId, BonusAmount, AssignmentId, Reason, GrantTime.
COLUMNS = {
    "workerid": "worker",
    "assignmentid": "assignment",
    "bonusamount": "amount",
    "amount": "amount",
    "reason": "reason",
    "granttime": "grant_time",
}
REQUIRED = {"worker": "workerId", "assignment": "assignmentId", "amount": "bonusAmount"}


class BonusFileError(ServiceError):
    """The file cannot be imported; the message is one sentence naming the line."""


@dataclass(frozen=True)
class BonusRow:
    line: int
    worker_id: str
    assignment_id: str
    amount: Decimal
    reason: str
    grant_time: datetime | None

    @property
    def content(self) -> str:
        """A digest of what the bonus is: assignment, worker, amount and reason (``bonus_matching``)."""
        return content_digest(self.assignment_id, self.worker_id, self.amount, self.reason)

    @property
    def key(self) -> str:
        """The caller's bonus key (the ledger adds ``bonus:``): AssignmentId, content and grant time."""
        return bonus_key(self.assignment_id, self.content, self.grant_time)

    @property
    def legacy_key(self) -> str:
        return legacy_bonus_key(self.assignment_id, self.worker_id, self.amount, self.reason, self.grant_time)


@dataclass
class BonusImportResult:
    job: int
    rows: int
    bonuses_booked: int = 0
    amount_booked: Decimal = ZERO
    fees_booked: Decimal = ZERO
    already_booked: int = 0
    dated_from_file: int = 0  # booked before without a grant time; now booked dated, the undated row reversed
    workers_created: int = 0
    repeated_lines: list[int] = field(default_factory=list)
    rows_unlinked: list[dict[str, Any]] = field(default_factory=list)  # booked, without an assignment
    rows_skipped: list[dict[str, Any]] = field(default_factory=list)  # not booked

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out.update(amount_booked=str(self.amount_booked), fees_booked=str(self.fees_booked), currency=CURRENCY)
        return out


def _name(header: str) -> str:
    return re.sub(r"[^a-z]", "", header.lower())


def _amount(text: str) -> Decimal:
    try:
        amount = Decimal(text.strip().removeprefix("$").strip())
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(CENT):
        raise ValueError(f"bonus amount {text.strip()!r} is not a positive amount of whole cents")
    return amount.quantize(CENT)


def _columns(header: list[str], filename: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for index, name in enumerate(header):
        ours = COLUMNS.get(_name(name))
        if ours is None:
            continue
        if ours in found:
            raise BonusFileError(f"{filename} line 1: the header has two {REQUIRED.get(ours, ours)} columns.")
        found[ours] = index
    missing = [label for ours, label in REQUIRED.items() if ours not in found]
    if missing:
        raise BonusFileError(
            f"{filename} line 1: the header has no {', '.join(missing)} column, so this is not an MTurk bonus "
            "file (workerId,assignmentId,bonusAmount,reason or ListBonusPayments' WorkerId,BonusAmount,AssignmentId)."
        )
    return found


def _unterminated_line(data: bytes) -> int:
    """The number of the file's last line when it holds text but no line end (the file may be cut off inside
    it); 0 when the file ends with a line break. Lines are counted as the csv reader counts them."""
    lines = io.StringIO(data.decode("utf-8-sig"), newline="").readlines()
    last = lines[-1] if lines else ""
    return len(lines) if last.strip() and not last.endswith(("\n", "\r")) else 0


def read_bonuses(data: bytes, *, filename: str) -> tuple[list[BonusRow], list[int], int]:
    """The file's bonuses, the lines repeating an earlier row verbatim, and the data row count; raises
    ``BonusFileError`` naming the first bad line."""
    check_text(data, error=BonusFileError, name=filename, kind="bonus file", again="export it again")
    cut_line = _unterminated_line(data)
    header, records = read_csv_text(
        data,
        error=BonusFileError,
        not_utf8=f"{filename} is not UTF-8 text; export the bonus file again.",
        empty=f"{filename} is empty.",
        bad_header=f"{filename} line 1: the header is not readable CSV",
    )
    columns = _columns(header, filename)
    rows: list[BonusRow] = []
    repeated: list[int] = []
    seen: set[str] = set()
    count = 0
    for record in records:
        line = record.line
        if record.error is not None:
            reason = (
                "a quoted cell opens here and the file ends inside it, so the file looks cut off"
                if record.cut_short
                else record.error
            )
            raise BonusFileError(f"{filename} line {record.start}: unreadable CSV ({reason}); nothing was imported.")
        if line == cut_line:
            raise BonusFileError(
                f"{filename} line {line}: the file ends inside this row (it has no line end), so it looks cut off "
                "(a truncated download?); export it again, or end the file with a line break if the row is whole; "
                "nothing was imported."
            )
        count += 1
        try:
            row = _row(line, record.values, header, columns)
        except ValueError as exc:
            raise BonusFileError(f"{filename} line {line}: {exc}; nothing was imported.") from None
        if row.key in seen:
            repeated.append(line)
            continue
        seen.add(row.key)
        rows.append(row)
    if not count:
        raise BonusFileError(f"{filename} has a header but no bonus rows.")
    return rows, repeated, count


def _row(line: int, values: list[str], header: list[str], columns: dict[str, int]) -> BonusRow:
    if len(values) != len(header):
        raise ValueError(f"{len(values)} fields but the header has {len(header)}")

    def cell(name: str) -> str:
        return values[columns[name]].strip() if name in columns else ""

    worker, assignment = cell("worker"), cell("assignment")
    empty = [name for name, value in (("workerId", worker), ("assignmentId", assignment)) if not value]
    if empty:
        raise ValueError(f"empty {' and '.join(empty)}")
    try:
        granted = parse_time(cell("grant_time"))
    except ValueError as exc:
        raise ValueError(f"GrantTime: {exc}") from None
    return BonusRow(line, worker, assignment, _amount(cell("amount")), cell("reason"), granted)


def _live_bonuses(assignment_ids: list[int]) -> Counter[tuple[int, Decimal, str]]:
    """Bonuses paid through this app (already in the ledger under their own keys), by assignment and content."""
    return Counter(
        (assignment_id, amount, reason.strip())
        for assignment_id, amount, reason in MTurkBonus.objects.filter(assignment_id__in=assignment_ids).values_list(
            "assignment_id", "amount", "reason"
        )
    )


def _lines(
    job: Job, row: BonusRow, *, worker: Worker, assignment: dict[str, Any] | None, source: str
) -> list[CostLine]:
    base: dict[str, Any] = {
        "job_id": job.pk,
        "hit_id": assignment["hit_id"] if assignment else None,
        "assignment_id": assignment["id"] if assignment else None,
        "worker_id": worker.pk,
        "marketplace": MTURK,
        "status": CostStatus.CHARGED,
        "currency": CURRENCY,
        "reference": row.assignment_id,
        "memo": imported_memo(source, row.reason),
        "created_at": row.grant_time,  # dated when MTurk paid it, when the file says
    }
    return [
        CostLine(kind=CostKind.BONUS, amount=row.amount, idempotency_key=bonus_cost_key(row.key), **base),
        CostLine(
            kind=CostKind.MARKETPLACE_FEE,
            amount=bonus_fee(row.amount),
            idempotency_key=bonus_cost_key(row.key, "fee"),
            **base,
        ),
    ]


def import_mturk_bonuses(*, job: Job, data: bytes, filename: str, actor: Actor) -> BonusImportResult:
    """Book the bonus file's bonuses (and MTurk's fees on them) on ``job`` once; see the module docstring."""
    check_usd_job(job)
    rows, repeated, count = read_bonuses(data, filename=filename)
    result = BonusImportResult(job=job.pk, rows=count, repeated_lines=repeated)
    with transaction.atomic():
        assignments: dict[str, dict[str, Any]] = {
            str(a["external_id"]): dict(a)
            for a in Assignment.objects.filter(marketplace=MTURK, external_id__in={r.assignment_id for r in rows})
            .values("id", "external_id", "job_id", "hit_id", "worker_id", "worker__external_id")
            .order_by()
        }
        live = _live_bonuses([a["id"] for a in assignments.values() if a["job_id"] == job.pk])
        to_book: list[tuple[BonusRow, dict[str, Any] | None]] = []
        for row in rows:
            assignment = assignments.get(row.assignment_id)
            reason = ""
            if assignment is not None and assignment["job_id"] != job.pk:
                reason = f"assignment {row.assignment_id} belongs to job {assignment['job_id']}"
            elif assignment is not None and assignment["worker__external_id"] != row.worker_id:
                reason = f"assignment {row.assignment_id} was done by another worker than {row.worker_id}"
            elif assignment is not None and live[(assignment["id"], row.amount, row.reason)] > 0:
                live[(assignment["id"], row.amount, row.reason)] -= 1
                result.already_booked += 1  # paid through this app: booked then, under its own key
                continue
            if reason:
                result.rows_skipped.append({"line": row.line, "assignment": row.assignment_id, "reason": reason})
                continue
            to_book.append((row, assignment))
        new, claims = unbooked(to_book)
        result.already_booked += len(to_book) - len(new) + len(claims)  # a claimed one was booked, undated
        result.dated_from_file = len(claims)
        wanted = [row.worker_id for row, _ in new]
        known = set(
            Worker.objects.filter(marketplace=MTURK, external_id__in=wanted).values_list("external_id", flat=True)
        )
        workers = get_or_create_workers(marketplace=MTURK, external_ids=wanted)
        result.workers_created = len(set(wanted) - known)
        record_costs(
            line
            for row, assignment in new
            for line in _lines(job, row, worker=workers[row.worker_id], assignment=assignment, source=filename)
        )
        reverse_claimed(claims, source=filename)  # the undated bookings these dated rows replace
        replacing = {claim.key for claim in claims}
        paid = [row for row, _ in new if row.key not in replacing]  # bonuses the ledger did not hold at all
        result.bonuses_booked = len(paid)
        result.amount_booked = sum((row.amount for row in paid), ZERO)
        result.fees_booked = sum((bonus_fee(row.amount) for row in paid), ZERO)
        result.rows_unlinked = [
            {
                "line": row.line,
                "assignment": row.assignment_id,
                "reason": f"assignment {row.assignment_id} is not recorded in this job; booked on the worker only",
            }
            for row, assignment in to_book
            if assignment is None
        ]
        if new or claims:
            record_audit_event(
                actor=actor,
                action="bonuses.imported",
                object_type="job",
                object_id=job.pk,
                after={
                    "file": filename,
                    "bonuses": result.bonuses_booked,
                    "amount": str(result.amount_booked),
                    "fees": str(result.fees_booked),
                    "currency": CURRENCY,
                    "workers_created": result.workers_created,
                    "dated_from_file": [claim.key for claim in claims],  # replacing earlier undated bookings
                },
            )
    return result
