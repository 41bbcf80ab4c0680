"""Dataset versions: immutable, numbered snapshots of a job's consensus labels, and diffs between them.

A version's file is canonical JSON Lines (sorted keys, item order), so its sha256 identifies its content;
downloading it later returns the stored bytes unchanged.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.core.cache import cache
from django.core.files import File
from django.db import transaction
from django.db.models import Max
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from tasks.label_selectors import ExportOptions, LabelRow, get_consensus_run, iter_label_chunks
from tasks.models import ConsensusLabel, DatasetVersion, Job
from tasks.services.errors import ServiceError
from tasks.services.exports.streaming import _version_file_missing, open_stored_file, open_version_file
from workforce.audit import Actor, record_audit_event


def canonical_line(row: LabelRow) -> bytes:
    record = {
        "item_id": row.item_id,
        "external_id": row.external_id,
        "payload": row.payload,
        "value": row.value,
        "confidence": row.confidence,
        "probabilities": row.probabilities,
        "answers_count": row.answers_count,
        "method": row.method,
        "created_at": row.created_at.isoformat(),
    }
    return (json.dumps(record, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n").encode()


def create_dataset_version(*, job: Job, actor: Actor, note: str = "", created_by: Any = None) -> DatasetVersion:
    """Snapshot ``job``'s current consensus labels as its next dataset version."""
    run = get_consensus_run(job)
    if run is None:
        raise ServiceError(f"Job {job.pk} has no consensus labels yet; compute consensus first.")
    method, consensus_version, parameters = run
    digest = hashlib.sha256()
    rows = 0
    with tempfile.TemporaryFile() as spool:
        for chunk in iter_label_chunks(job, ExportOptions()):
            for row in chunk:
                line = canonical_line(row)
                spool.write(line)
                digest.update(line)
                rows += 1
        size = spool.tell()
        # Read without a lock: a consensus run that replaced the labels meanwhile is caught here.
        if ConsensusLabel.objects.filter(job=job).exclude(version=consensus_version).exists():
            raise ServiceError("Consensus was recomputed while the snapshot was taken; take it again.")
        spool.seek(0)
        with transaction.atomic():
            Job.objects.select_for_update().filter(pk=job.pk).first()  # one numbering at a time per job
            number = (DatasetVersion.objects.filter(job=job).aggregate(n=Max("number"))["n"] or 0) + 1
            version = DatasetVersion(
                job=job,
                number=number,
                method=method,
                parameters=parameters,
                consensus_version=consensus_version,
                row_count=rows,
                sha256=digest.hexdigest(),
                size_bytes=size,
                note=note,
                created_by=created_by,
                created_at=timezone.now(),
            )
            version.content.save(f"v{number}.jsonl", File(spool), save=False)
            version.save()
            record_audit_event(
                actor=actor,
                action="dataset_version.created",
                object_type="job",
                object_id=job.pk,
                after={
                    "number": number,
                    "method": method,
                    "consensus_version": consensus_version,
                    "rows": rows,
                    "sha256": version.sha256,
                    "note": note,
                },
            )
    return version


def verify_dataset_version(version: DatasetVersion) -> bool:
    """True when the stored file still has the checksum recorded at snapshot time."""
    digest = hashlib.sha256()
    with open_version_file(version) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest() == version.sha256


DIFF_KINDS = ("added", "removed", "changed", "unchanged")
# Version files are immutable and the cache key holds their checksums, so cached counts never go stale.
SUMMARY_CACHE_SECONDS = 30 * 86400


@dataclass
class VersionDiff:
    old: int
    new: int
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0

    def summary(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "removed": len(self.removed),
            "changed": len(self.changed),
            "unchanged": self.unchanged,
        }


@dataclass(frozen=True)
class DiffPosition:
    """Where a walk over two version files stands: the byte offset of the next unread line in each."""

    old: int = 0
    new: int = 0


@dataclass(frozen=True)
class DiffEntry:
    kind: str  # one of DIFF_KINDS
    external_id: str
    old: Any = None
    new: Any = None


@dataclass
class VersionDiffPage:
    """Up to a page of a diff's entries in item order, the diff's counts, and where the next page starts
    (``None`` on the last page)."""

    old: int
    new: int
    summary: dict[str, int]
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    next: DiffPosition | None = None

    def add(self, entry: DiffEntry) -> None:
        if entry.kind == "added":
            self.added.append(entry.external_id)
        elif entry.kind == "removed":
            self.removed.append(entry.external_id)
        else:
            self.changed.append({"external_id": entry.external_id, "old": entry.old, "new": entry.new})


class _VersionReader:
    """A version's file read forward from a byte offset, one line at a time: its item id, external id and
    label. Files are written in item order (``create_dataset_version``), which the reader checks."""

    def __init__(self, handle: IO[bytes], version: DatasetVersion, offset: int) -> None:
        self.handle, self.version = handle, version
        handle.seek(offset)
        self.offset = self.next_offset = offset
        self.item_id: int | None = None
        self.external_id = ""
        self.value: Any = None
        self.advance()

    def advance(self) -> None:
        self.offset = self.next_offset
        line = self.handle.readline()
        if not line:
            self.item_id = None
            return
        self.next_offset += len(line)
        data = json.loads(line)
        item_id = int(data["item_id"])
        if self.item_id is not None and item_id <= self.item_id:
            raise ServiceError(
                f"The file of dataset version {self.version.number} is not in item order, so it cannot be compared."
            )
        self.item_id, self.external_id, self.value = item_id, data["external_id"], data["value"]


def _open_alone(version: DatasetVersion) -> IO[bytes]:
    """The version's file on a handle of its own (a version compared with itself is read twice at once)."""
    content = version.content
    return open_stored_file(FieldFile(version, content.field, content.name), _version_file_missing(version))


def _walk(old: DatasetVersion, new: DatasetVersion, start: DiffPosition) -> Iterator[tuple[DiffPosition, DiffEntry]]:
    """Every row of the two versions from ``start`` on, paired by item (an item keeps its external id: items
    are never deleted), in item order: one entry per item with the position it starts at. Reads one line of
    each file at a time; a missing file raises ``StoredFileMissing``."""
    with _open_alone(old) as before, _open_alone(new) as after:
        a, b = _VersionReader(before, old, start.old), _VersionReader(after, new, start.new)
        while a.item_id is not None or b.item_id is not None:
            at = DiffPosition(a.offset, b.offset)
            if b.item_id is None or (a.item_id is not None and a.item_id < b.item_id):
                yield at, DiffEntry("removed", a.external_id, old=a.value)
                a.advance()
            elif a.item_id is None or b.item_id < a.item_id:
                yield at, DiffEntry("added", b.external_id, new=b.value)
                b.advance()
            else:
                yield at, DiffEntry("unchanged" if a.value == b.value else "changed", b.external_id, a.value, b.value)
                a.advance()
                b.advance()


def _check_comparable(old: DatasetVersion, new: DatasetVersion) -> None:
    if old.job_id != new.job_id:
        raise ServiceError("Only two versions of the same job can be compared.")


def diff_dataset_versions(*, old: DatasetVersion, new: DatasetVersion) -> VersionDiff:
    """Labels added, removed and changed from ``old`` to ``new`` (two versions of one job), by external id,
    all of them (the API pages them: ``get_version_diff_page``)."""
    _check_comparable(old, new)
    diff = VersionDiff(old=old.number, new=new.number)
    for _, entry in _walk(old, new, DiffPosition()):
        if entry.kind == "added":
            diff.added.append(entry.external_id)
        elif entry.kind == "removed":
            diff.removed.append(entry.external_id)
        elif entry.kind == "changed":
            diff.changed.append({"external_id": entry.external_id, "old": entry.old, "new": entry.new})
        else:
            diff.unchanged += 1
    return diff


def _summary_key(old: DatasetVersion, new: DatasetVersion) -> str:
    return f"dataset-version-diff:v1:{old.sha256}:{new.sha256}"


def get_version_diff_summary(*, old: DatasetVersion, new: DatasetVersion) -> dict[str, int]:
    """How many labels were added, removed, changed and left unchanged from ``old`` to ``new``: cached by the
    files' checksums, else counted in one pass over both files (a line of each in memory at a time)."""
    _check_comparable(old, new)
    summary: dict[str, int] | None = cache.get(_summary_key(old, new))
    if summary is None:
        summary = dict.fromkeys(DIFF_KINDS, 0)
        for _, entry in _walk(old, new, DiffPosition()):
            summary[entry.kind] += 1
        cache.set(_summary_key(old, new), summary, SUMMARY_CACHE_SECONDS)
    return summary


def get_version_diff_page(
    *,
    old: DatasetVersion,
    new: DatasetVersion,
    size: int,
    start: DiffPosition | None = None,
    summary: dict[str, int] | None = None,
) -> VersionDiffPage:
    """The next ``size`` entries (added, removed or changed labels, in item order) of the diff from ``old`` to
    ``new``, from ``start`` (a previous page's ``next``; the first page without one), and the diff's counts
    (``summary`` when the caller carries them from the first page).

    Memory holds a page, never a version. A page reads its own rows and the unchanged rows between them; the
    first page of a pair of versions not compared before also counts the rest (one pass over both files,
    the page and the counts together), later ones do not."""
    _check_comparable(old, new)
    if size < 1:
        raise ServiceError("A page holds at least one entry.")
    if summary is None and start is not None:
        summary = get_version_diff_summary(old=old, new=new)
    if summary is None:
        summary = cache.get(_summary_key(old, new))
    counts = dict.fromkeys(DIFF_KINDS, 0) if summary is None else None
    page = VersionDiffPage(old=old.number, new=new.number, summary=summary or {})
    taken = 0
    for at, entry in _walk(old, new, start or DiffPosition()):
        if counts is not None:
            counts[entry.kind] += 1
        if entry.kind == "unchanged":
            continue
        if taken < size:
            page.add(entry)
            taken += 1
        elif page.next is None:
            page.next = at  # the next page starts at its first entry, past the unchanged rows read here
            if counts is None:
                break
    if counts is not None:
        cache.set(_summary_key(old, new), counts, SUMMARY_CACHE_SECONDS)
        page.summary = counts
    return page
