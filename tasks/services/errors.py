"""Errors services raise. Each carries a sentence a person can act on; callers map them to a 400,
an admin message or CLI exit code 2."""

from __future__ import annotations

from dataclasses import dataclass


class ServiceError(Exception):
    """A request the service refuses; ``str(error)`` is the sentence to show."""


class InvalidTransition(ServiceError):
    pass


class SubmissionRefused(ServiceError):
    pass


class NoWorkAvailable(ServiceError):
    pass


class QueueUnavailable(ServiceError):
    """Background work was not queued: the broker is unreachable (``tasks.tasks.enqueue``). Callers answer
    503 (API) or an error message (admin), not a 400: the request was fine, try again later."""


class NotQualified(ServiceError):
    """The worker does not meet the job's requirements; the message lists what is missing."""


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class ImportValidationError(ServiceError):
    """The file has bad rows; nothing was written."""

    def __init__(self, errors: list[RowError], *, total_bad: int | None = None) -> None:
        self.errors = errors
        self.total_bad = total_bad if total_bad is not None else len(errors)
        shown = "; ".join(str(e) for e in errors[:5])
        more = f" (and {self.total_bad - 5} more)" if self.total_bad > 5 else ""
        super().__init__(f"{self.total_bad} bad row(s), nothing imported: {shown}{more}")
