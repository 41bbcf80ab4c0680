"""A Job run on Ground Truth end to end: publish (Stubber), a simulated run writes the real birds job's
output tree to (moto) S3, results are followed and collected as they arrive, and answers, worker
scores, consensus accuracy and ledger totals come out right."""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from tasks.models import (
    Answer,
    Assignment,
    CostEntry,
    CostKind,
    GoldGrade,
    GroundTruthLabel,
    Item,
    Job,
    JobState,
    LabelingJob,
    TaskKind,
    WorkerJobScore,
)
from tasks.selectors_groundtruth import compare_consensus_with_groundtruth
from tasks.services.groundtruth.importing import parse_gold_file
from tasks.services.groundtruth.running import (
    configure_labeling_job,
    follow_labeling_jobs,
    publish_labeling_job,
    stop_labeling_job,
)
from tasks.services.imports import payload_hash
from tests.tasks.groundtruth.data import IC_ARCHIVE, IC_MANIFEST, IC_TRUTH
from workforce.audit import Actor
from workforce.marketplaces.groundtruth.config import GroundTruthSettings
from workforce.marketplaces.groundtruth.connector import GroundTruth
from workforce.marketplaces.groundtruth.formats import WORKER_RESPONSE_PATH

pytestmark = pytest.mark.django_db
ACTOR = Actor.system("tests")
CONFIG = GroundTruthSettings(True, "arn:aws:iam::123456789012:role/GT", "crowdops-e2e", "gt", "us-east-1")
LABELS = ["Duck", "Sparrow", "Woodpecker", "Owl", "Parrot", "Turkey", "Falcon", "Swan", "Goose", "Canary"]
PRICE = Decimal("0.036")


def stem(source_ref: str) -> str:
    return PurePosixPath(source_ref).name.rsplit(".", 1)[0]


@pytest.fixture
def aws() -> Iterator[tuple[GroundTruth, Stubber, Any]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=CONFIG.bucket)
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        with Stubber(sagemaker) as stub:
            yield GroundTruth(config=CONFIG, sagemaker=sagemaker, s3=s3), stub, s3
            stub.assert_no_pending_responses()


@pytest.fixture
def birds_job() -> Job:
    truth = parse_gold_file(IC_TRUTH.read_text())
    job = Job.objects.create(
        name="Birds", task_kind=TaskKind.IMAGE_CLASSIFICATION, labels=LABELS, redundancy=5, consensus_method="ds"
    )
    items = []
    for line in IC_MANIFEST.read_text().splitlines():
        ref = json.loads(line)["source-ref"]
        payload = {"image_url": ref}
        gold = truth[stem(ref)] if int(hashlib.sha256(stem(ref).encode()).hexdigest(), 16) % 5 == 0 else None
        items.append(
            Item(job=job, external_id=stem(ref), payload=payload, payload_hash=payload_hash(payload),
                 is_gold=gold is not None, gold_answer=gold)
        )  # fmt: skip
    Item.objects.bulk_create(items)
    return job


def describe(name: str, status: str, output: str = "") -> dict[str, Any]:
    answer: dict[str, Any] = {
        "LabelingJobStatus": status,
        "LabelCounters": {"TotalLabeled": 302 if output else 0, "HumanLabeled": 302 if output else 0},
        "CreationTime": "2026-01-01T00:00:00Z",
        "LastModifiedTime": "2026-01-01T00:00:00Z",
        "JobReferenceCode": "ref",
        "LabelingJobName": name,
        "LabelingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:labeling-job/{name}",
        "LabelAttributeName": "crowdops-label",
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": f"s3://{CONFIG.bucket}/gt/{name}/input.manifest"}}},
        "OutputConfig": {"S3OutputPath": f"s3://{CONFIG.bucket}/gt/{name}/output/"},
        "RoleArn": CONFIG.role_arn,
        "HumanTaskConfig": {
            "WorkteamArn": "arn:aws:sagemaker:us-east-1:394669845002:workteam/public-crowd/default",
            "UiConfig": {"UiTemplateS3Uri": f"s3://{CONFIG.bucket}/t"},
            "PreHumanTaskLambdaArn": "arn:aws:lambda:us-east-1:432418664414:function:PRE-ImageMultiClass",
            "TaskTitle": "Birds", "TaskDescription": "Birds", "NumberOfHumanWorkersPerDataObject": 5,
            "TaskTimeLimitInSeconds": 300,
            "AnnotationConsolidationConfig": {
                "AnnotationConsolidationLambdaArn": "arn:aws:lambda:us-east-1:432418664414:function:ACS-ImageMultiClass"
            },
        },
    }  # fmt: skip
    if output:
        answer["LabelingJobOutput"] = {"OutputDatasetS3Uri": output}
    return answer


class SimulatedRun:
    """Writes what Ground Truth would, from the real birds job: worker responses per iteration, then the
    output manifest, with the real objects renumbered in the order of the input manifest we published."""

    def __init__(self, s3: Any, name: str) -> None:
        self.s3, self.name = s3, name
        self.out = f"gt/{name}/output/{name}/"
        body = s3.get_object(Bucket=CONFIG.bucket, Key=f"gt/{name}/input.manifest")["Body"].read().decode()
        self.inputs = [json.loads(line) for line in body.splitlines()]
        ours = {obj["source-ref"]: index for index, obj in enumerate(self.inputs)}
        self.real_lines = [json.loads(line) for line in IC_MANIFEST.read_text().splitlines()]
        self.to_ours = {real: ours[line["source-ref"]] for real, line in enumerate(self.real_lines)}

    def write_iteration(self, iteration: int) -> int:
        written = 0
        with tarfile.open(IC_ARCHIVE) as archive:
            for member in archive:
                match = WORKER_RESPONSE_PATH.search(member.name)
                if not member.isfile() or match is None or PurePosixPath(member.name).name.startswith("._"):
                    continue
                if int(match.group(1)) != iteration:
                    continue
                data = archive.extractfile(member).read()  # type: ignore[union-attr]
                ours = self.to_ours[int(match.group(2))]
                key = f"{self.out}annotations/worker-response/iteration-{iteration}/{ours}/{match.group(3)}"
                self.s3.put_object(Bucket=CONFIG.bucket, Key=key, Body=data)
                written += len(json.loads(data)["answers"])
        return written

    def write_output_manifest(self) -> str:
        by_ref = {line["source-ref"]: line for line in self.real_lines}
        lines = []
        for obj in self.inputs:
            real = by_ref[obj["source-ref"]]
            metadata = {**real["birds-open-images-clone-metadata"], "job-name": f"labeling-job/{self.name}"}
            lines.append(json.dumps({**obj, "crowdops-label": real["birds-open-images-clone"],
                                     "crowdops-label-metadata": metadata}))  # fmt: skip
        key = f"{self.out}manifests/output/output.manifest"
        self.s3.put_object(Bucket=CONFIG.bucket, Key=key, Body=("\n".join(lines) + "\n").encode())
        return f"s3://{CONFIG.bucket}/{key}"


def ledger(job: Job, kind: str) -> Decimal:
    # Summed in Python: SQLite's SUM over decimals goes through floats.
    return sum(CostEntry.objects.filter(job=job, kind=kind).values_list("amount", flat=True), Decimal("0"))


def test_a_job_runs_on_ground_truth_and_its_results_come_back_scored_and_costed(aws: Any, birds_job: Job) -> None:
    connector, stub, s3 = aws
    labeling_job = configure_labeling_job(
        job=birds_job, actor=ACTOR, workforce="public", task_price=PRICE, workers_per_object=5,
        workteam_arn="arn:aws:sagemaker:us-east-1:394669845002:workteam/public-crowd/default",
    )  # fmt: skip
    name = labeling_job.name
    stub.add_response("create_labeling_job", {"LabelingJobArn": f"arn:aws:sagemaker:us-east-1:1:labeling-job/{name}"})
    publish_labeling_job(job=birds_job, actor=ACTOR, connector=connector, budget=Decimal("100"))
    birds_job.refresh_from_db()
    assert birds_job.state == JobState.PUBLISHED
    run = SimulatedRun(s3, name)
    assert len(run.inputs) == 302 and all(obj["crowdops-item"] == stem(obj["source-ref"]) for obj in run.inputs)

    # The first iteration's answers arrive while the job is running: collected and paid per task.
    first = run.write_iteration(1)
    stub.add_response("describe_labeling_job", describe(name, "InProgress"), {"LabelingJobName": name})
    assert follow_labeling_jobs(actor=ACTOR, connector=connector) == 1
    assert Answer.objects.filter(job=birds_job).count() == first == 50
    assert ledger(birds_job, CostKind.WORKFORCE_PRICE) == PRICE * first
    assert ledger(birds_job, CostKind.GT_OBJECT_CHARGE) == 0
    labeling_job.refresh_from_db()
    assert labeling_job.status == "InProgress"

    # The rest arrives and the job completes with Ground Truth's own consolidated labels.
    run.write_iteration(2)
    output = run.write_output_manifest()
    stub.add_response("describe_labeling_job", describe(name, "Completed", output), {"LabelingJobName": name})
    follow_labeling_jobs(actor=ACTOR, connector=connector)
    labeling_job.refresh_from_db()
    birds_job.refresh_from_db()
    assert (labeling_job.status, labeling_job.counters["TotalLabeled"], birds_job.state) == (
        "Completed",
        302,
        "completed",
    )

    assert Answer.objects.filter(job=birds_job).count() == 1510
    assert Assignment.objects.filter(job=birds_job).values("worker").distinct().count() == 97
    assert Item.objects.filter(job=birds_job).count() == 302  # published items reused, none created
    assert GroundTruthLabel.objects.filter(job=birds_job).count() == 302
    gold_answers = Answer.objects.filter(job=birds_job, item__is_gold=True).count()
    assert GoldGrade.objects.filter(job=birds_job).count() == gold_answers > 0
    scored = WorkerJobScore.objects.filter(job=birds_job, gold_answers__gt=0, accuracy__isnull=False)
    assert scored.exists() and all(0 < s.accuracy < 1 for s in scored)
    assert WorkerJobScore.objects.filter(job=birds_job, agreement__isnull=False).count() >= 90

    truth = parse_gold_file(IC_TRUTH.read_text())
    comparison = compare_consensus_with_groundtruth(job=birds_job, truth=truth)
    assert comparison.items == 302 - Item.objects.filter(job=birds_job, is_gold=True).count()
    assert comparison.ours >= comparison.groundtruth > 0.85

    assert ledger(birds_job, CostKind.WORKFORCE_PRICE) == PRICE * 1510
    assert ledger(birds_job, CostKind.GT_OBJECT_CHARGE) == Decimal("0.08") * 302
    # Finished and collected: the follower leaves it alone, and nothing is booked twice.
    assert follow_labeling_jobs(actor=ACTOR, connector=connector) == 0
    assert CostEntry.objects.filter(job=birds_job).count() == 1510 + 302


def test_publishing_twice_creates_one_labeling_job_and_stop_is_sent_once(aws: Any, birds_job: Job) -> None:
    connector, stub, _ = aws
    labeling_job = configure_labeling_job(
        job=birds_job, actor=ACTOR, workteam_arn="arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/t"
    )
    stub.add_response("create_labeling_job", {"LabelingJobArn": "arn:aws:sagemaker:us-east-1:1:labeling-job/x"})
    publish_labeling_job(job=birds_job, actor=ACTOR, connector=connector)
    again = publish_labeling_job(job=birds_job, actor=ACTOR, connector=connector)
    assert again.arn.endswith("labeling-job/x") and LabelingJob.objects.count() == 1
    stub.add_response("stop_labeling_job", {}, {"LabelingJobName": labeling_job.name})
    stopped = stop_labeling_job(labeling_job=again, actor=ACTOR, connector=connector)
    assert stopped.status == "Stopping"
