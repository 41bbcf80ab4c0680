"""Paging for every REST list: cursor pages of ``PAGE_SIZE`` rows, ``?page_size=`` up to ``MAX_PAGE_SIZE``."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class BoundedCursorPagination(CursorPagination):
    """Cursor paging (stable under inserts, no OFFSET scans) with a hard cap on the page size."""

    ordering = "-pk"
    page_size_query_param = "page_size"
    max_page_size = 500
