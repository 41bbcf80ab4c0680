"""The MTurk results CSV as an export format (``--format mturk``), from ``tasks.services.mturk_results``.

That writer reads the job's assignments itself (one row per assignment, the requester UI's columns),
so it ignores the consensus chunks; its rows are streamed out in batches as it writes them.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Iterator
from queue import Queue

from tasks.label_selectors import ExportOptions, LabelRow
from tasks.models import Job
from tasks.services.errors import ServiceError
from tasks.services.exports.registry import Exporter, register_exporter

_FLUSH_AT = 256 * 1024


class _QueueWriter(io.TextIOBase):
    """A text stream that hands its content to a queue in blocks (so the CSV never sits whole in memory)."""

    def __init__(self, queue: Queue[bytes | BaseException | None]) -> None:
        self.queue = queue
        self.buffer: list[str] = []
        self.size = 0

    def write(self, text: str) -> int:
        self.buffer.append(text)
        self.size += len(text)
        if self.size >= _FLUSH_AT:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if self.buffer:
            self.queue.put("".join(self.buffer).encode())
            self.buffer, self.size = [], 0


class MturkResultsExporter(Exporter):
    name = "mturk"
    content_type = "text/csv"
    extension = "csv"

    def check(self, job: Job, options: ExportOptions) -> None:
        if not options.worker_ids:
            raise ServiceError(
                "The MTurk results format carries every worker's MTurk id (personal data): it needs permission to "
                "see worker ids (or --worker-ids on the command line)."
            )

    def render(self, job: Job, chunks: Iterable[list[LabelRow]], options: ExportOptions) -> Iterator[bytes]:
        from django.db import connection

        from tasks.services.mturk_results import export_mturk_results

        if connection.vendor == "sqlite" or connection.in_atomic_block:
            # One connection (SQLite, or inside a transaction): write in this thread, then hand the blocks out.
            stream = io.StringIO(newline="")
            export_mturk_results(job, stream)
            data = stream.getvalue().encode()
            for start in range(0, len(data), _FLUSH_AT):
                yield data[start : start + _FLUSH_AT]
            return
        queue: Queue[bytes | BaseException | None] = Queue(maxsize=8)

        def produce() -> None:
            writer = _QueueWriter(queue)
            try:
                export_mturk_results(job, writer)  # type: ignore[arg-type]  # a text stream
                writer.flush()
                queue.put(None)
            except BaseException as exc:  # handed to the consumer, which re-raises it
                queue.put(exc)
            finally:
                connection.close()

        thread = threading.Thread(target=produce, daemon=True)
        thread.start()
        while (block := queue.get()) is not None:
            if isinstance(block, BaseException):
                raise block
            yield block
        thread.join()


register_exporter(MturkResultsExporter(), replace=True)
