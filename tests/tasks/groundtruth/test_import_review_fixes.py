"""The Ground Truth import after the migration review: imported work is accepted (approved) work, a manifest
line too large to store is refused naming it, and a manifest with a byte-order mark is read while one that is
not UTF-8 is refused naming its line."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tasks.models import (
    Answer,
    Assignment,
    AssignmentState,
    ConsensusLabel,
    CostEntry,
    CostKind,
    GroundTruthLabel,
    Item,
    Job,
    WorkerJobScore,
)
from tasks.review_selectors import count_submitted_by_gold
from tasks.services.errors import ServiceError
from tasks.services.groundtruth import manifest_input
from tasks.services.groundtruth.costs import CONSOLIDATED_WORKER
from tasks.services.groundtruth.importing import import_groundtruth_output
from tasks.services.review_batch import approve_assignments
from tests.tasks.groundtruth.data import BBOX_MANIFEST, IC_ARCHIVE, IC_MANIFEST, IC_TRUTH
from workforce.audit import Actor
from workforce.marketplaces.groundtruth.formats import iter_worker_response_files, read_worker_responses

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")
BIRDS = ("--manifest", str(IC_MANIFEST), "--worker-responses", str(IC_ARCHIVE))
BOM = b"\xef\xbb\xbf"


@pytest.fixture(scope="module")
def ic_responses() -> list:
    return read_worker_responses(iter_worker_response_files(IC_ARCHIVE))


def run(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command("import_groundtruth", *args, "--json", stdout=out)
    return dict(json.loads(out.getvalue()))


def refused(*args: str) -> str:
    """The command's one-sentence refusal (exit 2), after checking nothing was written."""
    with pytest.raises(CommandError) as caught:
        call_command("import_groundtruth", *args, stdout=StringIO(), stderr=StringIO())
    assert caught.value.returncode == 2
    message = str(caught.value)
    assert message.count(". ") == 0 and "Traceback" not in message and "codec" not in message
    assert not Job.objects.exists() and not Item.objects.exists()
    return message


# --- 1. Imported work is approved: Ground Truth has no review step ----------------------------------------


def test_imported_worker_answers_are_approved_work_not_waiting_for_review(ic_responses: list) -> None:
    result = import_groundtruth_output(
        manifest_text=IC_MANIFEST.read_text(), responses=ic_responses, actor=ACTOR, new_job_name="birds"
    )
    job = Job.objects.get(pk=result.job)
    assignments = Assignment.objects.filter(job=job)
    assert assignments.count() == 1510
    assert assignments.filter(state=AssignmentState.APPROVED).count() == 1510
    assert not assignments.filter(reviewed_at__isnull=True).exists()
    one = assignments.order_by("pk").first()
    assert one is not None and one.reviewed_at == one.submitted_at  # accepted when it was submitted
    assert count_submitted_by_gold(job).ungraded == 0  # nothing in a reviewer's queue
    # accepted work counts for consensus and worker scores as before
    assert ConsensusLabel.objects.filter(job=job).count() == 302
    assert WorkerJobScore.objects.filter(job=job, agreement__isnull=False).count() == 97


def test_the_history_is_paid_once_and_reviewing_the_job_pays_nothing_more() -> None:
    data = run("--new-job", "birds", *BIRDS, "--book-costs", "--task-price", "0.012")
    job = Job.objects.get(pk=data["job"]["id"])
    rows = CostEntry.objects.filter(job=job)
    assert rows.filter(kind=CostKind.WORKFORCE_PRICE).count() == 1510
    assert rows.filter(kind=CostKind.GT_OBJECT_CHARGE).count() == 302
    assert not rows.exclude(kind__in=[CostKind.WORKFORCE_PRICE, CostKind.GT_OBJECT_CHARGE]).exists()
    # "Approve all submitted work": there is none; no reward booked on top of Ground Truth's task price,
    # and no marketplace refusal (Ground Truth has no per-assignment review).
    review = approve_assignments(job=job, actor=ACTOR)
    assert (review.approved, review.refusals, review.paid) == (0, (), Decimal(0))
    assert rows.count() == 1510 + 302
    assert run("--job", str(job.pk), *BIRDS, "--book-costs", "--task-price", "0.012")["costs_booked"] == 0
    assert rows.count() == 1510 + 302


def test_work_imported_before_as_submitted_becomes_approved_on_reimport_without_new_costs() -> None:
    data = run("--new-job", "birds", *BIRDS, "--book-costs", "--task-price", "0.012")
    job = Job.objects.get(pk=data["job"]["id"])
    Assignment.objects.filter(job=job).update(state=AssignmentState.SUBMITTED, reviewed_at=None)  # the old import
    again = run("--job", str(job.pk), *BIRDS, "--book-costs", "--task-price", "0.012")
    assert again["assignments"] == {"created": 0, "unchanged": 1510, "answers_created": 0}
    assert again["costs_booked"] == 0
    assert Assignment.objects.filter(job=job, state=AssignmentState.APPROVED).count() == 1510
    assert Answer.objects.filter(job=job).count() == 1510


def test_ground_truths_consolidated_boxes_are_an_approved_annotator_that_costs_nothing() -> None:
    result = import_groundtruth_output(
        manifest_text=BBOX_MANIFEST.read_text(),
        responses=[],
        actor=ACTOR,
        new_job_name="boxes",
        history_costs=True,
        task_price=Decimal("0.036"),
    )
    job = Job.objects.get(pk=result.job)
    consolidated = Assignment.objects.filter(job=job, worker__external_id=CONSOLIDATED_WORKER)
    assert consolidated.count() == 100
    assert not Assignment.objects.filter(job=job).exclude(state=AssignmentState.APPROVED).exists()
    assert not CostEntry.objects.filter(job=job, kind=CostKind.WORKFORCE_PRICE).exists()
    assert CostEntry.objects.filter(job=job, kind=CostKind.GT_OBJECT_CHARGE).count() == 100


# --- 2. What a manifest line may store is capped ------------------------------------------------------------


def text_line(text: str, label: str = "pos", **extra: Any) -> str:
    meta = {"class-name": label, "confidence": 0.8, "type": "groundtruth/text-classification", "job-name": "t"}
    return json.dumps({"source": text, **extra, "sentiment": 0, "sentiment-metadata": meta})


def test_a_multi_megabyte_source_is_refused_naming_its_line_and_nothing_is_written() -> None:
    lines = [text_line("great film"), text_line("x" * (3 * 1024 * 1024)), text_line("dull", "neg")]
    with pytest.raises(ServiceError) as caught:
        import_groundtruth_output(manifest_text="\n".join(lines), responses=[], actor=ACTOR, new_job_name="t")
    message = str(caught.value)
    assert "line 2" in message and "'source'" in message and "1 MB" in message
    assert not Job.objects.exists() and not Item.objects.exists() and not GroundTruthLabel.objects.exists()


def test_a_huge_input_metadata_value_exits_2_naming_its_line(tmp_path: Path) -> None:
    big = json.dumps({"source-ref": "s3://b/x.jpg", "metadata": {"blob": "A" * (2 * 1024 * 1024)}})
    manifest = tmp_path / "output.manifest"
    manifest.write_text("\n".join([*IC_MANIFEST.read_text().splitlines()[:3], big]) + "\n")
    message = refused("--new-job", "birds", "--manifest", str(manifest))
    assert "line 4" in message and "'metadata'" in message


def test_a_huge_label_metadata_value_is_refused_naming_its_line(tmp_path: Path) -> None:
    lines = IC_MANIFEST.read_text().splitlines()[:3]
    second = json.loads(lines[1])
    second["birds-open-images-clone-metadata"]["notes"] = "n" * (2 * 1024 * 1024)
    lines[1] = json.dumps(second)
    manifest = tmp_path / "output.manifest"
    manifest.write_text("\n".join(lines) + "\n")
    message = refused("--new-job", "birds", "--manifest", str(manifest))
    assert "line 2" in message and "birds-open-images-clone-metadata" in message


def test_blank_lines_do_not_shift_the_line_named(tmp_path: Path) -> None:
    lines = [text_line("great film"), "", text_line("y" * (2 * 1024 * 1024))]
    manifest = tmp_path / "output.manifest"
    manifest.write_text("\n".join(lines) + "\n")
    assert "line 3" in refused("--new-job", "t", "--manifest", str(manifest))


def test_a_line_within_the_limit_imports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(manifest_input, "MAX_STORED_BYTES", 4096)
    fits = text_line("z" * 1500)  # stored twice (as 'source' and 'text'): about 3 KB
    result = import_groundtruth_output(manifest_text=fits, responses=[], actor=ACTOR, new_job_name="t")
    assert result.items_created == 1
    with pytest.raises(ServiceError, match="line 1"):
        import_groundtruth_output(manifest_text=text_line("z" * 2500), responses=[], actor=ACTOR, new_job_name="u")


# --- 3. Byte-order marks and bytes that are not UTF-8 -------------------------------------------------------


def test_a_manifest_starting_with_a_byte_order_mark_imports(tmp_path: Path) -> None:
    manifest = tmp_path / "output.manifest"
    manifest.write_bytes(BOM + "\r\n".join(IC_MANIFEST.read_text().splitlines()[:5]).encode() + b"\r\n")
    data = run("--new-job", "birds", "--manifest", str(manifest))
    assert data["items"]["created"] == 5 and data["groundtruth_consensus_labels"]["created"] == 5
    assert Item.objects.get(external_id="0").payload["image_url"].startswith("s3://")


def test_the_service_reads_a_manifest_text_that_kept_its_byte_order_mark() -> None:
    text = "\ufeff" + "\n".join(IC_MANIFEST.read_text().splitlines()[:5])  # e.g. S3 bytes decoded as utf-8
    result = import_groundtruth_output(manifest_text=text, responses=[], actor=ACTOR, new_job_name="birds")
    assert result.items_created == 5


def test_a_gold_file_starting_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    gold = tmp_path / "gold.json"
    gold.write_bytes(BOM + IC_TRUTH.read_bytes())
    data = run("--new-job", "birds", "--manifest", str(IC_MANIFEST), "--gold", str(gold))
    assert data["items"]["gold"] == 302


def test_a_manifest_that_is_not_utf8_exits_2_naming_the_line(tmp_path: Path) -> None:
    lines = [line.encode() for line in IC_MANIFEST.read_text().splitlines()[:3]]
    lines.append('{"source-ref": "s3://b/caf\u00e9.jpg"}'.encode("latin-1"))  # a Windows-1252 export
    manifest = tmp_path / "output.manifest"
    manifest.write_bytes(BOM + b"\n".join(lines) + b"\n")
    message = refused("--new-job", "birds", "--manifest", str(manifest))
    assert message.startswith(f"--manifest {manifest} is not UTF-8 text")
    assert "line 4" in message


def test_a_collected_s3_manifest_that_is_not_utf8_is_a_permanent_error_naming_the_line(birds_job: Job) -> None:
    from tasks.services.groundtruth.running import collect_labeling_job, configure_labeling_job
    from workforce.marketplaces.base import MarketplaceError
    from workforce.marketplaces.groundtruth.connector import CollectedOutput, LabelingJobState

    class NotUtf8:
        def collect(self, state: Any) -> CollectedOutput:
            data = b'{"source-ref": "s3://b/a.jpg"}\n{"source-ref": "s3://b/\xe9.jpg"}\n'
            return CollectedOutput(data.decode("utf-8"), True, [])  # as the connector decodes what S3 holds

    labeling_job = configure_labeling_job(
        job=birds_job, actor=ACTOR, workteam_arn="arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/t"
    )
    state = LabelingJobState(name=labeling_job.name, arn="arn:x", status="Completed", output_manifest_uri="s3://b/o")
    with pytest.raises(MarketplaceError) as caught:
        collect_labeling_job(labeling_job=labeling_job, actor=ACTOR, connector=NotUtf8(), state=state)  # type: ignore[arg-type]
    assert caught.value.permanent and "line 2" in str(caught.value) and "UTF-8" in str(caught.value)
