"""Database ids read from user input: a number the database's integer columns can hold, or nothing."""

from __future__ import annotations

# The largest value a 64-bit signed column holds: the limit of SQLite integers and PostgreSQL bigint.
MAX_ID = 2**63 - 1


def parse_id(text: str) -> int | None:
    """``text`` as a positive id (ASCII digits only, at most ``MAX_ID``), else None: a tampered id is "not
    found", never a ValueError or an integer overflow deep in a query."""
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None
