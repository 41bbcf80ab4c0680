"""The Ground Truth connector against botocore's Stubber (SageMaker) and moto (S3)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from tests.workforce.marketplaces.shapes import request_violations
from workforce.marketplaces.base import MarketplaceError, MarketplaceNotConfigured
from workforce.marketplaces.groundtruth.config import GroundTruthSettings
from workforce.marketplaces.groundtruth.connector import (
    NAME_PATTERN,
    GroundTruth,
    LabelingJobSpec,
    LabelingJobState,
    labeling_job_name,
    usd_price,
)
from workforce.marketplaces.groundtruth.lambdas import builtin_lambda_arns

CONFIG = GroundTruthSettings(
    enabled=True,
    role_arn="arn:aws:iam::123456789012:role/GroundTruthRole",
    bucket="crowdops-test",
    prefix="gt",
    region="us-west-2",
)
NAME = "crowdops-7-birds"
ARN = f"arn:aws:sagemaker:us-west-2:123456789012:labeling-job/{NAME}"


def spec(**overrides: Any) -> LabelingJobSpec:
    fields: dict[str, Any] = {
        "name": NAME,
        "label_attribute": "crowdops-label",
        "task_type": "ImageMultiClass",
        "labels": ["Duck", "Owl"],
        "objects": [
            {"source-ref": "s3://b/1.jpg", "crowdops-item": "1"},
            {"source-ref": "s3://b/2.jpg", "crowdops-item": "2"},
        ],
        "workteam_arn": "arn:aws:sagemaker:us-west-2:394669845002:workteam/public-crowd/default",
        "title": "Birds",
        "description": "Which bird is it?",
        "workers_per_object": 5,
        "public_task_price": Decimal("0.036"),
        "ui_template": "<crowd-form></crowd-form>",
        "max_labeled_objects": 200,
        "tags": {"crowdops-job": "7"},
    }
    return LabelingJobSpec(**(fields | overrides))


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=CONFIG.bucket)
        yield client


@pytest.fixture
def sagemaker() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("sagemaker", region_name="us-west-2", aws_access_key_id="test", aws_secret_access_key="test")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def connector(sagemaker: tuple[Any, Stubber], s3: Any) -> GroundTruth:
    return GroundTruth(config=CONFIG, sagemaker=sagemaker[0], s3=s3)


def test_publish_writes_manifest_categories_and_template_then_creates_the_job(sagemaker: Any, s3: Any) -> None:
    stub = sagemaker[1]
    stub.add_response("create_labeling_job", {"LabelingJobArn": ARN}, {
        "LabelingJobName": NAME,
        "LabelAttributeName": "crowdops-label",
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": f"s3://crowdops-test/gt/{NAME}/input.manifest"}}},
        "OutputConfig": {"S3OutputPath": f"s3://crowdops-test/gt/{NAME}/output/"},
        "RoleArn": CONFIG.role_arn,
        "LabelCategoryConfigS3Uri": f"s3://crowdops-test/gt/{NAME}/label-categories.json",
        "StoppingConditions": {"MaxHumanLabeledObjectCount": 200},
        "HumanTaskConfig": ANY,
        "Tags": [{"Key": "crowdops-job", "Value": "7"}],
    })  # fmt: skip
    state = connector(sagemaker, s3).publish_labeling_job(spec())
    assert (state.arn, state.adopted) == (ARN, False)
    lines = s3.get_object(Bucket=CONFIG.bucket, Key=f"gt/{NAME}/input.manifest")["Body"].read().decode().splitlines()
    assert [json.loads(line) for line in lines] == list(spec().objects)
    categories = json.loads(s3.get_object(Bucket=CONFIG.bucket, Key=f"gt/{NAME}/label-categories.json")["Body"].read())
    assert categories == {"document-version": "2018-11-28", "labels": [{"label": "Duck"}, {"label": "Owl"}]}
    template = s3.get_object(Bucket=CONFIG.bucket, Key=f"gt/{NAME}/template.liquid.html")["Body"].read()
    assert template == b"<crowd-form></crowd-form>"


def test_the_create_request_is_valid_against_the_service_model(s3: Any) -> None:
    gt = GroundTruth(config=CONFIG, sagemaker=object(), s3=s3)
    uris = {"manifest": "s3://b/m", "categories": "s3://b/c.json", "template": "s3://b/t.html"}
    params = gt.create_params(spec(), uris)
    assert request_violations("sagemaker", "CreateLabelingJob", params) == []
    human = params["HumanTaskConfig"]
    assert human["PreHumanTaskLambdaArn"] == "arn:aws:lambda:us-west-2:081040173940:function:PRE-ImageMultiClass"
    assert human["AnnotationConsolidationConfig"] == {
        "AnnotationConsolidationLambdaArn": "arn:aws:lambda:us-west-2:081040173940:function:ACS-ImageMultiClass"
    }
    assert human["PublicWorkforceTaskPrice"] == {"AmountInUsd": {"Dollars": 0, "Cents": 3, "TenthFractionsOfACent": 6}}
    assert human["NumberOfHumanWorkersPerDataObject"] == 5
    custom = gt.create_params(
        spec(task_type="custom", pre_annotation_lambda_arn="arn:aws:lambda:us-west-2:123456789012:function:pre",
             consolidation_lambda_arn="arn:aws:lambda:us-west-2:123456789012:function:acs", public_task_price=None),
        uris,
    )  # fmt: skip
    assert request_violations("sagemaker", "CreateLabelingJob", custom) == []
    assert "PublicWorkforceTaskPrice" not in custom["HumanTaskConfig"]


def test_the_shape_check_catches_what_stubber_lets_through(s3: Any) -> None:
    gt = GroundTruth(config=CONFIG, sagemaker=object(), s3=s3)
    params = gt.create_params(spec(), {"manifest": "s3://b/m", "categories": "s3://b/c", "template": "s3://b/t"})
    params["LabelingJobName"] = "-bad name-"
    params["HumanTaskConfig"]["MaxConcurrentTaskCount"] = 9000
    found = request_violations("sagemaker", "CreateLabelingJob", params)
    assert any("LabelingJobName" in f for f in found) and any("MaxConcurrentTaskCount" in f for f in found)


@pytest.mark.parametrize(
    ("job_id", "name"),
    [(1, "Birds"), (42, "  ÜBER long -- name!!! " * 6), (9, "---"), (123456, "x" * 200), (5, "Ünïcödé ☃ job")],
)
def test_labeling_job_names_are_deterministic_and_valid(job_id: int, name: str) -> None:
    first = labeling_job_name(job_id, name)
    assert first == labeling_job_name(job_id, name)
    assert NAME_PATTERN.match(first) and 1 <= len(first) <= 63
    assert first.startswith(f"crowdops-{job_id}")


def test_a_retried_publish_adopts_the_job_a_lost_response_created(sagemaker: Any, s3: Any) -> None:
    stub = sagemaker[1]
    stub.add_client_error("create_labeling_job", service_error_code="ResourceInUse", http_status_code=400)
    stub.add_response("describe_labeling_job", describe("InProgress"), {"LabelingJobName": NAME})
    state = connector(sagemaker, s3).publish_labeling_job(spec())
    assert (state.arn, state.status, state.adopted) == (ARN, "InProgress", True)


@pytest.mark.parametrize(("code", "permanent"), [("ThrottlingException", False), ("ValidationException", True)])
def test_errors_say_whether_a_retry_can_help(sagemaker: Any, s3: Any, code: str, permanent: bool) -> None:
    stub = sagemaker[1]
    stub.add_client_error("describe_labeling_job", service_error_code=code, http_status_code=400)
    with pytest.raises(MarketplaceError) as caught:
        connector(sagemaker, s3).describe(NAME)
    assert (caught.value.permanent, caught.value.code) == (permanent, code)


def describe(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "LabelingJobStatus": status,
        "LabelCounters": {"TotalLabeled": 10, "HumanLabeled": 10, "MachineLabeled": 0,
                          "FailedNonRetryableError": 1, "Unlabeled": 5},
        "CreationTime": "2026-01-01T00:00:00Z",
        "LastModifiedTime": "2026-01-01T00:00:00Z",
        "JobReferenceCode": "abc",
        "LabelingJobName": NAME,
        "LabelingJobArn": ARN,
        "LabelAttributeName": "crowdops-label",
        "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": f"s3://crowdops-test/gt/{NAME}/input.manifest"}}},
        "OutputConfig": {"S3OutputPath": f"s3://crowdops-test/gt/{NAME}/output/"},
        "RoleArn": CONFIG.role_arn,
        "HumanTaskConfig": {
            "WorkteamArn": "arn:aws:sagemaker:us-west-2:394669845002:workteam/public-crowd/default",
            "UiConfig": {"UiTemplateS3Uri": "s3://crowdops-test/t"},
            "PreHumanTaskLambdaArn": "arn:aws:lambda:us-west-2:081040173940:function:PRE-ImageMultiClass",
            "TaskTitle": "Birds", "TaskDescription": "Birds", "NumberOfHumanWorkersPerDataObject": 5,
            "TaskTimeLimitInSeconds": 300,
            "AnnotationConsolidationConfig": {
                "AnnotationConsolidationLambdaArn": "arn:aws:lambda:us-west-2:081040173940:function:ACS-ImageMultiClass"
            },
        },
        **extra,
    }  # fmt: skip


def test_describe_reads_status_counters_and_failure(sagemaker: Any, s3: Any) -> None:
    stub = sagemaker[1]
    stub.add_response("describe_labeling_job", describe("Failed", FailureReason="Role cannot read the bucket"))
    state = connector(sagemaker, s3).describe(NAME)
    assert state.status == "Failed" and state.failure_reason == "Role cannot read the bucket"
    assert state.counters["Unlabeled"] == 5


def test_stop_calls_stop_labeling_job(sagemaker: Any, s3: Any) -> None:
    stub = sagemaker[1]
    stub.add_response("stop_labeling_job", {}, {"LabelingJobName": NAME})
    connector(sagemaker, s3).stop(NAME)


def test_collect_reads_the_output_manifest_and_every_worker_response(sagemaker: Any, s3: Any) -> None:
    out = f"gt/{NAME}/output/{NAME}/"
    s3.put_object(
        Bucket=CONFIG.bucket, Key=out + "manifests/output/output.manifest", Body=b'{"source-ref":"s3://b/1"}\n'
    )
    for obj in ("0", "1"):
        s3.put_object(
            Bucket=CONFIG.bucket, Key=out + f"annotations/worker-response/iteration-1/{obj}/t.json", Body=b"{}"
        )
    s3.put_object(Bucket=CONFIG.bucket, Key=out + "annotations/consolidated-annotation/x.json", Body=b"{}")
    state = LabelingJobState(
        NAME, ARN, "Completed", output_manifest_uri=f"s3://{CONFIG.bucket}/{out}manifests/output/output.manifest"
    )
    collected = connector(sagemaker, s3).collect(state)
    assert collected.manifest_is_output and collected.manifest_text.startswith('{"source-ref"')
    assert [key.rsplit("/", 3)[-2] for key, _ in collected.worker_files] == ["0", "1"]


def test_enabled_but_unconfigured_fails_loudly() -> None:
    with pytest.raises(MarketplaceNotConfigured, match="GROUNDTRUTH_ROLE_ARN"):
        GroundTruth(config=GroundTruthSettings(True, "", "crowdops-test", "", "us-west-2"), sagemaker=1, s3=1)
    with pytest.raises(MarketplaceNotConfigured, match="not enabled"):
        GroundTruth(config=GroundTruthSettings(False, CONFIG.role_arn, "b", "", "us-west-2"), sagemaker=1, s3=1)


def test_prices_and_regions_outside_what_aws_takes_are_refused() -> None:
    with pytest.raises(MarketplaceError, match="tenths of a cent"):
        usd_price(Decimal("0.0125"))
    assert usd_price(Decimal("1.2")) == {"Dollars": 1, "Cents": 20, "TenthFractionsOfACent": 0}
    with pytest.raises(MarketplaceError, match="region"):
        builtin_lambda_arns("BoundingBox", "mars-north-1")
    assert (
        builtin_lambda_arns("BoundingBox", "eu-west-1")[1]
        == "arn:aws:lambda:eu-west-1:568282634449:function:ACS-BoundingBox"
    )


def test_a_job_of_the_same_name_reading_another_manifest_is_not_adopted(sagemaker: Any, s3: Any) -> None:
    stub = sagemaker[1]
    stub.add_client_error("create_labeling_job", service_error_code="ResourceInUse", http_status_code=400)
    other = describe("InProgress")
    other["InputConfig"] = {"DataSource": {"S3DataSource": {"ManifestS3Uri": "s3://someone-else/input.manifest"}}}
    stub.add_response("describe_labeling_job", other, {"LabelingJobName": NAME})
    with pytest.raises(MarketplaceError, match="someone else's") as caught:
        connector(sagemaker, s3).publish_labeling_job(spec())
    assert caught.value.permanent and caught.value.code == "name_taken"
