"""Paging for every REST list: cursor pages (stable under inserts, no OFFSET scans, never a COUNT over
the table) of ``PAGE_SIZE`` rows, ``?page_size=`` up to ``max_page_size``."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class BoundedCursorPagination(CursorPagination):
    """Cursor paging (stable under inserts, no OFFSET scans) with a hard cap on the page size."""

    ordering = "-pk"
    page_size_query_param = "page_size"
    max_page_size = 500


class IdCursorPagination(CursorPagination):
    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 500


class ItemCursorPagination(IdCursorPagination):
    ordering = "item_id"
