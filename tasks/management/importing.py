"""What the file-import commands share: the job and file from their options, and how a refused import
ends (each bad row on stderr, then one sentence and exit code 2)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from django.core.management.base import CommandError

from tasks.models import Job
from tasks.services.errors import ImportValidationError, ServiceError


class _Writer(Protocol):
    def write(self, msg: str) -> None: ...


def job_and_file(options: dict[str, Any]) -> tuple[Job, Path]:
    """The ``--job`` and ``file`` options, checked (exit code 2 with a sentence when either is wrong)."""
    path: Path = options["file"]
    job = Job.objects.filter(pk=options["job"]).first()
    if job is None:
        raise CommandError(f"There is no job with id {options['job']}.", returncode=2)
    if not path.is_file():
        raise CommandError(f"{path} is not a readable file.", returncode=2)
    return job, path


@contextmanager
def refused_imports(path: Path, stderr: _Writer) -> Iterator[None]:
    """Turn a refused import into exit code 2: every bad row on ``stderr``, then one sentence."""
    try:
        yield
    except ImportValidationError as exc:
        for error in exc.errors:
            stderr.write(f"{path}: {error}")
        raise CommandError(f"{exc.total_bad} bad row(s) in {path}; nothing was imported.", returncode=2) from exc
    except ServiceError as exc:
        raise CommandError(str(exc), returncode=2) from exc
