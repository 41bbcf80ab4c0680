"""Errors qualification services raise; ``str(error)`` is one sentence a person can act on."""

from __future__ import annotations


class QualificationError(Exception):
    """A request a qualification service refuses."""


class AttemptRefused(QualificationError):
    """A worker may not start or submit this attempt (limit, retry delay, deadline, not theirs)."""


class InvalidTest(QualificationError):
    """A test or its questions are not well-formed."""
