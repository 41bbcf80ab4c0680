"""Importing real Ground Truth output: items, Ground Truth's labels, every worker's answer, once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.models import (
    Answer,
    Assignment,
    ConsensusLabel,
    CostEntry,
    GoldGrade,
    GroundTruthLabel,
    Item,
    Job,
    TaskKind,
    WorkerJobScore,
)
from tasks.selectors_groundtruth import compare_consensus_with_groundtruth
from tasks.services.errors import ServiceError
from tasks.services.groundtruth.importing import (
    assignment_external_id,
    import_groundtruth_output,
    parse_gold_file,
)
from tests.tasks.groundtruth.data import (
    BBOX_MANIFEST,
    CUSTOM_MANIFEST,
    IC_ARCHIVE,
    IC_MANIFEST,
    IC_TRUTH,
    SEMSEG_MANIFEST,
)
from workforce.audit import Actor
from workforce.marketplaces.groundtruth.formats import iter_worker_response_files, read_worker_responses
from workforce.models import Worker

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")


@pytest.fixture(scope="module")
def ic_responses() -> list:
    return read_worker_responses(iter_worker_response_files(IC_ARCHIVE))


def test_the_birds_job_imports_every_worker_response_and_its_labels(ic_responses: list) -> None:
    result = import_groundtruth_output(
        manifest_text=IC_MANIFEST.read_text(), responses=ic_responses, actor=ACTOR, new_job_name="birds"
    )
    job = Job.objects.get(pk=result.job)
    assert job.task_kind == TaskKind.IMAGE_CLASSIFICATION
    assert job.labels[0] == "Duck" and len(job.labels) == 10
    assert (result.items_created, result.assignments_created, result.workers_created) == (302, 1510, 97)
    assert Answer.objects.filter(job=job).count() == 1510
    assert Worker.objects.filter(marketplace="groundtruth", external_id__startswith="public.us-east-1.").count() == 97
    first = Item.objects.get(job=job, external_id="0")
    assert first.payload["image_url"].endswith("0273f487d52c16d2.jpg")
    gt = GroundTruthLabel.objects.get(item=first)
    assert (gt.value, gt.raw, gt.confidence, gt.human_annotated) == ("Canary", 9, 0.95, True)
    assert ConsensusLabel.objects.filter(job=job).count() == 302
    assert WorkerJobScore.objects.filter(job=job, agreement__isnull=False).count() == 97
    answer = Assignment.objects.get(
        external_id=assignment_external_id("birds-open-images-clone", 99, "public.us-east-1.6GGTL6LILGKV5NJBTWQC7E3SRA")
    )
    assert answer.answers.get().value == "Duck"


def test_reimporting_the_same_files_changes_nothing(ic_responses: list) -> None:
    first = import_groundtruth_output(
        manifest_text=IC_MANIFEST.read_text(), responses=ic_responses, actor=ACTOR, new_job_name="birds"
    )
    job = Job.objects.get(pk=first.job)
    version = ConsensusLabel.objects.filter(job=job).first().version  # type: ignore[union-attr]
    again = import_groundtruth_output(
        manifest_text=IC_MANIFEST.read_text(), responses=ic_responses, actor=ACTOR, job=job
    )
    assert (again.items_created, again.assignments_created, again.gt_labels_created) == (0, 0, 0)
    assert (again.items_unchanged, again.assignments_unchanged, again.gt_labels_unchanged) == (302, 1510, 302)
    assert again.consensus_version is None
    assert ConsensusLabel.objects.filter(job=job, version=version).count() == 302
    assert Assignment.objects.filter(job=job).count() == 1510


def test_our_consensus_is_at_least_as_accurate_as_grounds_truths_on_the_real_job(ic_responses: list) -> None:
    truth = parse_gold_file(IC_TRUTH.read_text())
    result = import_groundtruth_output(
        manifest_text=IC_MANIFEST.read_text(), responses=ic_responses, actor=ACTOR, new_job_name="birds"
    )
    comparison = compare_consensus_with_groundtruth(job=Job.objects.get(pk=result.job), truth=truth)
    assert comparison.items == 302
    assert comparison.groundtruth_right == 272  # what the data's README says Ground Truth scored
    assert comparison.ours_right >= comparison.groundtruth_right


def test_gold_items_grade_the_workers_who_answered_them(ic_responses: list) -> None:
    truth = parse_gold_file(IC_TRUTH.read_text())
    gold = dict(list(truth.items())[:40])
    result = import_groundtruth_output(
        manifest_text=IC_MANIFEST.read_text(), responses=ic_responses, actor=ACTOR, new_job_name="birds", gold=gold
    )
    job = Job.objects.get(pk=result.job)
    assert result.gold_items == 40
    assert Item.objects.filter(job=job, is_gold=True).count() == 40
    grades = GoldGrade.objects.filter(job=job)
    assert grades.count() == Answer.objects.filter(job=job, item__is_gold=True).count() > 0
    assert WorkerJobScore.objects.filter(job=job, gold_answers__gt=0).exists()
    assert not ConsensusLabel.objects.filter(job=job, item__is_gold=True).exists()


@pytest.mark.parametrize(
    ("manifest", "items", "task_type"),
    [
        (BBOX_MANIFEST, 100, "groundtruth/object-detection"),
        (SEMSEG_MANIFEST, 1, "groundtruth/semantic-segmentation"),
        (CUSTOM_MANIFEST, 296, "groundtruth/custom"),
    ],
)
def test_box_mask_and_custom_outputs_import_with_their_raw_labels(manifest: Path, items: int, task_type: str) -> None:
    result = import_groundtruth_output(manifest_text=manifest.read_text(), responses=[], actor=ACTOR, new_job_name="x")
    job = Job.objects.get(pk=result.job)
    assert result.items_created == items == GroundTruthLabel.objects.filter(job=job, task_type=task_type).count()
    line = json.loads(manifest.read_text().splitlines()[0])
    label = GroundTruthLabel.objects.get(item__job=job, item__external_id="0")
    assert label.raw == line[result.label_attribute]
    assert label.metadata == line[f"{result.label_attribute}-metadata"]
    again = import_groundtruth_output(manifest_text=manifest.read_text(), responses=[], actor=ACTOR, job=job)
    assert (again.items_created, again.gt_labels_unchanged) == (0, items)


def test_the_custom_tasks_input_metadata_is_kept_as_input_not_taken_for_the_label() -> None:
    result = import_groundtruth_output(
        manifest_text=CUSTOM_MANIFEST.read_text(), responses=[], actor=ACTOR, new_job_name="legal"
    )
    assert result.label_attribute == "legal-entity-label-job-labeling-job-20220104T172242"
    item = Item.objects.get(job_id=result.job, external_id="0")
    assert item.payload["annotator-metadata"] == {"Info": "Annotate Required Entities"}
    assert item.payload["page"] == "1"


def test_a_labeling_job_already_imported_elsewhere_is_refused(ic_responses: list) -> None:
    import_groundtruth_output(
        manifest_text=IC_MANIFEST.read_text(), responses=ic_responses, actor=ACTOR, new_job_name="a"
    )
    with pytest.raises(ServiceError, match="already imported into job"):
        import_groundtruth_output(
            manifest_text=IC_MANIFEST.read_text(), responses=ic_responses, actor=ACTOR, new_job_name="b"
        )
    assert Job.objects.count() == 1


def test_an_answer_outside_the_jobs_labels_writes_nothing(ic_responses: list) -> None:
    job = Job.objects.create(name="j", task_kind=TaskKind.IMAGE_CLASSIFICATION, labels=["Duck", "Owl"])
    with pytest.raises(ServiceError, match="cannot be recorded"):
        import_groundtruth_output(manifest_text=IC_MANIFEST.read_text(), responses=ic_responses, actor=ACTOR, job=job)
    assert not Item.objects.filter(job=job).exists()
    assert not Assignment.objects.exists() and not CostEntry.objects.exists()


def test_a_manifest_without_a_label_attribute_is_refused() -> None:
    with pytest.raises(ServiceError, match="not a Ground Truth manifest"):
        import_groundtruth_output(
            manifest_text='{"source-ref": "s3://b/a.jpg"}\n', responses=[], actor=ACTOR, new_job_name="x"
        )
    assert not Job.objects.exists()


def test_a_text_job_with_source_lines_imports_its_answers() -> None:
    from workforce.marketplaces.groundtruth.formats import parse_worker_response

    meta = {
        "class-name": "pos",
        "confidence": 0.8,
        "type": "groundtruth/text-classification",
        "job-name": "labeling-job/t",
    }
    lines = [
        json.dumps({"source": "great film", "sentiment": 0, "sentiment-metadata": meta}),
        json.dumps({"source": "dull", "sentiment": 1, "sentiment-metadata": {**meta, "class-name": "neg"}}),
    ]
    answers = [
        {"answerContent": {"crowd-classifier": {"label": label}}, "workerId": f"private.eu-west-1.{worker}",
         "submissionTime": "2024-01-02T03:04:05Z", "acceptanceTime": "2024-01-02T03:03:05Z", "timeSpentInSeconds": 60}
        for worker, label in (("a", "pos"), ("b", "pos"), ("c", "neg"))
    ]  # fmt: skip
    responses = parse_worker_response(
        "t/worker-response/iteration-1/0/x.json", json.dumps({"answers": answers}).encode()
    )
    result = import_groundtruth_output(
        manifest_text="\n".join(lines), responses=responses, actor=ACTOR, new_job_name="reviews"
    )
    job = Job.objects.get(pk=result.job)
    assert (job.task_kind, job.labels) == (TaskKind.TEXT_CLASSIFICATION, ["pos", "neg"])
    assert Item.objects.get(job=job, external_id="1").payload["text"] == "dull"
    assert sorted(Answer.objects.filter(job=job).values_list("value", flat=True)) == ["neg", "pos", "pos"]
    assert Worker.objects.filter(external_id="private.eu-west-1.a").exists()
    assert ConsensusLabel.objects.get(job=job, item__external_id="0").value == "pos"
