"""A logging filter that stamps each record with the current request's id (the ``X-Request-ID`` header)."""

from __future__ import annotations

import logging

from workforce.request_context import current_request_id

NO_REQUEST = "-"


class RequestIdFilter(logging.Filter):
    """Sets ``record.request_id``: the id of the request being served, ``-`` outside a request (Celery, commands).

    Attach it to a handler (settings ``LOGGING``), so records propagated from every logger get it, and use
    ``%(request_id)s`` in the handler's format."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            record.request_id = current_request_id.get() or NO_REQUEST
        return True
