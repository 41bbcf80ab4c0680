"""Paging for big tables: cursor pages in id order, never a COUNT over the table."""

from __future__ import annotations

from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class ItemCursorPagination(IdCursorPagination):
    ordering = "item_id"
