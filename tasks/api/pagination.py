"""Paging for every REST list: cursor pages (stable under inserts, no OFFSET scans, never a COUNT over
the table) of ``PAGE_SIZE`` rows, ``?page_size=`` up to ``max_page_size``."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination

from tasks.api.converters import MAX_ID


class CheckedCursorPagination(CursorPagination):
    """A cursor is opaque, but it is client input: its position must be an id the database can hold (every
    list here orders by an integer id), else the request gets DRF's "Invalid cursor" 404 instead of a 500
    from deep in the query."""

    def decode_cursor(self, request: Any) -> Cursor | None:
        cursor = super().decode_cursor(request)
        if cursor is None or cursor.position is None:
            return cursor
        position = str(cursor.position)
        if not (position.isascii() and position.lstrip("-").isdigit() and abs(int(position)) <= MAX_ID):
            raise NotFound(self.invalid_cursor_message)
        return cursor


class BoundedCursorPagination(CheckedCursorPagination):
    """Cursor paging (stable under inserts, no OFFSET scans) with a hard cap on the page size."""

    ordering = "-pk"
    page_size_query_param = "page_size"
    max_page_size = 500


class IdCursorPagination(CheckedCursorPagination):
    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


class ItemCursorPagination(IdCursorPagination):
    ordering = "item_id"
