"""Paging for every REST list: cursor pages (stable under inserts, no OFFSET scans, never a COUNT over
the table) of ``PAGE_SIZE`` rows, ``?page_size=`` up to ``max_page_size``; ``SignedCursor`` for a list that
is not a queryset."""

from __future__ import annotations

from typing import Any

from django.core import signing
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.utils.urls import replace_query_param

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


class SignedCursor:
    """Paging for a list that is not a queryset (the dataset version diff: a walk over two stored files), in
    the lists' terms: ``?page_size=`` (``page_size`` by default, at most ``max_page_size``; the view's query
    serializer checks it) and a ``next`` link carrying an opaque ``cursor``. The cursor is the walk's own
    state, signed with ``salt``, so it is only ever one this server issued for the same list; any other is a
    400 naming the parameter (the queryset lists answer a bad cursor with DRF's 404)."""

    page_size = 100
    max_page_size = 500
    cursor_query_param = "cursor"
    invalid_cursor_message = "Invalid cursor: use the `next` link of a previous page of this list."

    def __init__(self, salt: str) -> None:
        self.salt = f"tasks.api.pagination.SignedCursor:{salt}"

    def decode(self, token: str | None) -> dict[str, Any] | None:
        """The state a ``next`` link's cursor carries (``None`` for the first page)."""
        if token is None:
            return None
        try:
            state = signing.loads(token, salt=self.salt)
        except signing.BadSignature:
            state = None
        if not isinstance(state, dict):
            raise ValidationError({self.cursor_query_param: [self.invalid_cursor_message]})
        return state

    def next_link(self, request: Any, state: dict[str, Any] | None) -> str | None:
        """The URL of the page after this one (``None`` after the last page): the request's own, with the cursor."""
        if state is None:
            return None
        token = signing.dumps(state, salt=self.salt, compress=True)
        return replace_query_param(request.build_absolute_uri(), self.cursor_query_param, token)
