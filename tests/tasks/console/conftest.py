from __future__ import annotations

from tests.tasks.exports.conftest import _media, labeled_job  # noqa: F401  (shared fixtures)
