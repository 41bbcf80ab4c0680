"""Path converters for the API: ids the database can hold, or a 404 (never an overflow deep in a query)."""

from __future__ import annotations

from workforce.ids import MAX_ID

__all__ = ["MAX_ID", "BoundedIntConverter"]


class BoundedIntConverter:
    """Like Django's ``int`` converter, but a number too large for the database does not match (404)."""

    regex = "[0-9]{1,19}"

    def to_python(self, value: str) -> int:
        number = int(value)
        if number > MAX_ID:
            raise ValueError(f"{value} is out of range")
        return number

    def to_url(self, value: int) -> str:
        return str(value)
