"""CSV text from an uploaded file: what the items import and the MTurk results and bonus readers share.

Decoding (UTF-8, a BOM dropped), the dialect (comma or tab, whichever the first line has more of; strict, so a
stray quote or a quoted cell cut off by the end of the file is an error, not a cell), the header (cells
stripped) and the records after it (blank rows skipped, a line that is not CSV handed back as an error with
where it starts and ends). The callers word their own errors. Pure: no Django.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _csv import Reader


@dataclass(frozen=True)
class Record:
    """One non-blank CSV record: ``values``, or the ``error`` that stopped it being read."""

    start: int  # the line the record begins on (a quoted cell may span lines)
    line: int  # the line it ends on (the csv reader's ``line_num`` after reading it)
    values: list[str]
    error: csv.Error | None = None

    @property
    def cut_short(self) -> bool:
        """The error is the file ending inside a quoted cell."""
        return self.error is not None and "end of data" in str(self.error)


def _dialect(first_line: str) -> type[csv.Dialect]:
    class Dialect(csv.excel):
        strict = True  # a stray quote or a quoted cell cut off by the end of the file is an error, not a cell
        delimiter = "\t" if first_line.count("\t") > first_line.count(",") else ","

    return Dialect


def _whitespace(values: list[str]) -> bool:
    return not any(v.strip() for v in values)


def records(reader: Reader, *, blank: Callable[[list[str]], bool] = _whitespace) -> Iterator[Record]:
    """The records ``reader`` has left, skipping empty and ``blank`` ones (by default: only white space)."""
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield Record(start=start, line=reader.line_num, values=[], error=exc)
            continue
        if values and not blank(values):
            yield Record(start=start, line=reader.line_num, values=values)


def read_csv_text(
    data: bytes, *, error: Callable[[str], Exception], not_utf8: str, empty: str, bad_header: str
) -> tuple[list[str], Iterator[Record]]:
    """The header (cells stripped) and a lazy stream of the non-blank records after it.

    Raises ``error(not_utf8)`` for bytes that are not UTF-8, ``error(empty)`` for a file with only white space,
    and ``error(f"{bad_header} (<the csv module's reason>).")`` for a first line that is not CSV.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise error(not_utf8) from None
    if not text.strip():
        raise error(empty)
    reader = csv.reader(io.StringIO(text, newline=""), dialect=_dialect(text.split("\n", 1)[0]))
    try:
        header = [cell.strip() for cell in next(reader)]
    except csv.Error as exc:
        raise error(f"{bad_header} ({exc}).") from None
    return header, records(reader)
