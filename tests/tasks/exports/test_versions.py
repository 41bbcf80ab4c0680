"""Dataset versions: immutable numbered snapshots, byte-identical downloads, diffs."""

from __future__ import annotations

import hashlib
import io

import pytest

from tasks.models import ConsensusLabel, DatasetVersion, Job
from tasks.services.consensus import compute_consensus
from tasks.services.errors import ServiceError
from tasks.services.exports import (
    ExportOptions,
    create_dataset_version,
    diff_dataset_versions,
    export_labels,
    verify_dataset_version,
)
from tests.factories import JobFactory
from workforce.audit import Actor
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")


def test_a_snapshot_is_numbered_with_method_rows_and_checksum(labeled_job: Job) -> None:
    first = create_dataset_version(job=labeled_job, actor=SYSTEM, note="baseline")
    second = create_dataset_version(job=labeled_job, actor=SYSTEM)
    assert (first.number, second.number) == (1, 2)
    assert first.method == "mv" and first.consensus_version == 1
    assert first.row_count == 4
    content = first.content.open("rb").read()
    assert hashlib.sha256(content).hexdigest() == first.sha256
    assert first.size_bytes == len(content)
    # Same labels, same bytes.
    assert second.sha256 == first.sha256
    assert verify_dataset_version(first)
    events = AuditEvent.objects.filter(action="dataset_version.created").order_by("id")
    assert [e.after["number"] for e in events] == [1, 2]
    assert events[0].after["note"] == "baseline"


def test_a_version_downloads_byte_identical_after_the_labels_change(labeled_job: Job) -> None:
    version = create_dataset_version(job=labeled_job, actor=SYSTEM)
    before = io.BytesIO()
    export_labels(job=labeled_job, fmt="jsonl", out=before, actor=SYSTEM, version=version)
    ConsensusLabel.objects.filter(job=labeled_job).update(value="neg")
    after = io.BytesIO()
    export_labels(job=labeled_job, fmt="jsonl", out=after, actor=SYSTEM, version=version)
    assert before.getvalue() == after.getvalue()
    assert b'"label":"pos"' in after.getvalue()
    assert version.content.open("rb").read().count(b"\n") == 4


def test_a_version_exports_labels_only(labeled_job: Job) -> None:
    version = create_dataset_version(job=labeled_job, actor=SYSTEM)
    with pytest.raises(ServiceError, match="labels only"):
        export_labels(
            job=labeled_job,
            fmt="csv",
            out=io.BytesIO(),
            actor=SYSTEM,
            version=version,
            options=ExportOptions(cost=True),
        )


def test_a_version_of_another_job_is_refused(labeled_job: Job) -> None:
    version = create_dataset_version(job=labeled_job, actor=SYSTEM)
    other = JobFactory()
    with pytest.raises(ServiceError, match="another job"):
        export_labels(job=other, fmt="csv", out=io.BytesIO(), actor=SYSTEM, version=version)


def test_a_job_without_consensus_has_no_snapshot() -> None:
    with pytest.raises(ServiceError, match="no consensus labels"):
        create_dataset_version(job=JobFactory(), actor=SYSTEM)
    assert not DatasetVersion.objects.exists()


def test_diff_lists_changed_added_and_removed_labels(labeled_job: Job) -> None:
    old = create_dataset_version(job=labeled_job, actor=SYSTEM)
    labels = list(ConsensusLabel.objects.filter(job=labeled_job).select_related("item").order_by("item_id"))
    ConsensusLabel.objects.filter(pk=labels[0].pk).update(value="neg")
    ConsensusLabel.objects.filter(pk=labels[1].pk).delete()
    new = create_dataset_version(job=labeled_job, actor=SYSTEM)
    diff = diff_dataset_versions(old=old, new=new)
    assert diff.changed == [{"external_id": labels[0].item.external_id, "old": "pos", "new": "neg"}]
    assert diff.removed == [labels[1].item.external_id]
    assert diff.added == []
    assert diff.summary() == {"added": 0, "removed": 1, "changed": 1, "unchanged": 2}
    reverse = diff_dataset_versions(old=new, new=old)
    assert reverse.added == [labels[1].item.external_id]


def test_recomputed_consensus_gets_a_new_checksum_only_if_labels_moved(labeled_job: Job) -> None:
    first = create_dataset_version(job=labeled_job, actor=SYSTEM)
    compute_consensus(job=labeled_job, actor=SYSTEM, method="ds")
    second = create_dataset_version(job=labeled_job, actor=SYSTEM)
    assert (second.method, second.consensus_version) == ("ds", 2)
    assert second.sha256 != first.sha256  # method and version are part of each row


def test_versions_cannot_be_compared_across_jobs(labeled_job: Job, make_published_job, make_worker) -> None:
    from tests.tasks.exports.conftest import work

    other = make_published_job(items=1, redundancy=1)
    work(other, [make_worker()], lambda n, ext: "pos")
    compute_consensus(job=other, actor=SYSTEM)
    with pytest.raises(ServiceError, match="same job"):
        diff_dataset_versions(
            old=create_dataset_version(job=labeled_job, actor=SYSTEM),
            new=create_dataset_version(job=other, actor=SYSTEM),
        )
