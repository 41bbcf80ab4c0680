"""The export format registry. A format is one ``Exporter`` registered under its name; other modules add
their own (``register_exporter(MyExporter())``, e.g. the MTurk results CSV) without touching this package."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from tasks.label_selectors import ExportOptions, LabelRow
from tasks.models import Job
from tasks.services.errors import ServiceError

# Every format the console knows of, registered or not (the CLI's choices).
KNOWN_FORMATS = ("csv", "jsonl", "manifest", "coco", "mturk")


class UnknownFormat(ServiceError):
    pass


class Exporter:
    """Turns a job's label rows into the bytes of one file format, chunk by chunk."""

    name: str = ""
    content_type: str = "application/octet-stream"
    extension: str = ""

    def check(self, job: Job, options: ExportOptions) -> None:
        """Raise ``ServiceError`` with a sentence when this format cannot hold ``job``'s labels."""

    def render(self, job: Job, chunks: Iterable[list[LabelRow]], options: ExportOptions) -> Iterator[bytes]:
        raise NotImplementedError


_REGISTRY: dict[str, Exporter] = {}


def register_exporter(exporter: Exporter, *, replace: bool = False) -> Exporter:
    if not exporter.name:
        raise ValueError("An exporter needs a name.")
    if exporter.name in _REGISTRY and not replace:
        raise ValueError(f"An exporter named {exporter.name!r} is already registered.")
    _REGISTRY[exporter.name] = exporter
    return exporter


def unregister_exporter(name: str) -> None:
    _REGISTRY.pop(name, None)


def registered_formats() -> list[str]:
    return sorted(_REGISTRY)


def get_exporter(name: str) -> Exporter:
    try:
        return _REGISTRY[name]
    except KeyError:
        if name in KNOWN_FORMATS:
            raise UnknownFormat(
                f"The {name} export format is not available yet: no exporter is registered for it."
            ) from None
        raise UnknownFormat(f"Unknown export format {name!r}; use one of: {', '.join(registered_formats())}.") from None
