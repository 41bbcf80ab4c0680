"""Dataset versions: immutable, numbered snapshots of a job's consensus labels, and diffs between them.

A version's file is canonical JSON Lines (sorted keys, item order), so its sha256 identifies its content;
downloading it later returns the stored bytes unchanged.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from typing import Any

from django.core.files import File
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from tasks.label_selectors import ExportOptions, LabelRow, get_consensus_run, iter_label_chunks
from tasks.models import ConsensusLabel, DatasetVersion, Job
from tasks.services.errors import ServiceError
from tasks.services.exports.streaming import iter_version_chunks, open_version_file
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


def _labels(version: DatasetVersion) -> dict[str, Any]:
    return {row.external_id: row.value for chunk in iter_version_chunks(version) for row in chunk}


def diff_dataset_versions(*, old: DatasetVersion, new: DatasetVersion) -> VersionDiff:
    """Labels added, removed and changed from ``old`` to ``new`` (two versions of one job), by external id."""
    if old.job_id != new.job_id:
        raise ServiceError("Only two versions of the same job can be compared.")
    before, after = _labels(old), _labels(new)  # reading a missing file raises StoredFileMissing
    diff = VersionDiff(old=old.number, new=new.number)
    for external_id, value in after.items():
        if external_id not in before:
            diff.added.append(external_id)
        elif before[external_id] != value:
            diff.changed.append({"external_id": external_id, "old": before[external_id], "new": value})
        else:
            diff.unchanged += 1
    diff.removed = [external_id for external_id in before if external_id not in after]
    return diff
