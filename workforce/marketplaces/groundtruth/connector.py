"""The Ground Truth connector: S3 files and SageMaker labeling-job calls, dataclasses in and out.

A labeling job is created once per Job under a deterministic name; a retried publish that meets
``ResourceInUse`` for that name adopts the existing job instead of starting a second one. Results are
read back from the job's S3 output: the output manifest when the job has finished (else the input
manifest we wrote) and every file under ``annotations/worker-response/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from workforce.marketplaces.base import (
    AssignmentRecord,
    HitSpec,
    MarketplaceError,
    MarketplaceNotConfigured,
    PublishedHit,
)
from workforce.marketplaces.groundtruth.config import GroundTruthSettings
from workforce.marketplaces.groundtruth.lambdas import BUILT_IN_TASK_TYPES, builtin_lambda_arns

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_RETRYABLE = {"ThrottlingException", "Throttling", "ServiceUnavailable", "InternalFailure", "ResourceLimitExceeded"}
LABEL_CATEGORY_VERSION = "2018-11-28"


def labeling_job_name(job_id: int, job_name: str) -> str:
    """``crowdops-<id>-<slug of the name>``: 1-63 characters matching SageMaker's name pattern."""
    slug = re.sub(r"[^a-z0-9]+", "-", job_name.lower()).strip("-")
    name = f"crowdops-{job_id}-{slug}"[:63].rstrip("-")
    assert NAME_PATTERN.match(name), name
    return name


def usd_price(amount: Decimal) -> dict[str, int]:
    """A ``PublicWorkforceTaskPrice.AmountInUsd`` from an amount in whole tenths of a cent (max $2.999)."""
    tenths = amount * 1000
    if tenths != tenths.to_integral_value() or not Decimal("0") <= amount < Decimal("3"):
        raise MarketplaceError(
            f"Public workforce price {amount} must be under $3 in whole tenths of a cent.", permanent=True
        )
    total = int(tenths)
    return {"Dollars": total // 1000, "Cents": total // 10 % 100, "TenthFractionsOfACent": total % 10}


@dataclass(frozen=True)
class LabelingJobSpec:
    """Everything ``create_labeling_job`` needs. ``objects`` are the input manifest's lines."""

    name: str
    label_attribute: str
    task_type: str
    labels: Sequence[str]
    objects: Sequence[Mapping[str, Any]]
    workteam_arn: str
    title: str
    description: str
    workers_per_object: int = 3
    task_time_limit_seconds: int = 300
    task_availability_seconds: int = 864000
    max_concurrent_tasks: int = 1000
    public_task_price: Decimal | None = None
    ui_template: str = ""
    pre_annotation_lambda_arn: str = ""
    consolidation_lambda_arn: str = ""
    max_labeled_objects: int | None = None
    keywords: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LabelingJobState:
    name: str
    arn: str
    status: str
    counters: Mapping[str, int] = field(default_factory=dict)
    failure_reason: str = ""
    output_manifest_uri: str = ""
    input_manifest_uri: str = ""
    adopted: bool = False


@dataclass(frozen=True)
class CollectedOutput:
    """What a labeling job has written so far: a manifest and every worker-response file."""

    manifest_text: str
    manifest_is_output: bool
    worker_files: list[tuple[str, bytes]]


def _error(exc: Exception, action: str) -> MarketplaceError:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        message = exc.response.get("Error", {}).get("Message", "")
        return MarketplaceError(
            f"Ground Truth {action} failed: {code} {message}".strip(), permanent=code not in _RETRYABLE, code=code
        )
    if isinstance(exc, BotoCoreError):
        return MarketplaceError(f"Ground Truth {action} failed: {exc}", permanent=False, code="connection")
    raise exc


def _split_s3(uri: str) -> tuple[str, str]:
    match = re.match(r"^s3://([^/]+)/(.*)$", uri)
    if match is None:
        raise MarketplaceError(f"{uri!r} is not an s3:// URI.", permanent=True)
    return match.group(1), match.group(2)


class GroundTruth:
    """Runs Jobs as SageMaker Ground Truth labeling jobs (``publish_labeling_job``, ``describe``,
    ``stop``, ``collect``). The per-Hit ``Marketplace`` methods are refused: Ground Truth publishes a
    whole dataset at once and has no per-assignment review."""

    name = "groundtruth"

    def __init__(self, *, config: GroundTruthSettings | None = None, sagemaker: Any = None, s3: Any = None) -> None:
        self.config = config or GroundTruthSettings.from_django()
        if not self.config.enabled:
            raise MarketplaceNotConfigured("Ground Truth is not enabled (GROUNDTRUTH_ENABLED).")
        problems = self.config.problems()
        if problems:
            raise MarketplaceNotConfigured("Ground Truth is enabled but " + "; ".join(problems) + ".")
        if sagemaker is None or s3 is None:
            import boto3

            sagemaker = sagemaker or boto3.client("sagemaker", region_name=self.config.region)
            s3 = s3 or boto3.client("s3", region_name=self.config.region)
        self.sagemaker = sagemaker
        self.s3 = s3

    # --- S3 layout -----------------------------------------------------------------------------
    def _key(self, job_name: str, *parts: str) -> str:
        return "/".join(p for p in (self.config.prefix, job_name, *parts) if p)

    def _uri(self, key: str) -> str:
        return f"s3://{self.config.bucket}/{key}"

    def output_prefix(self, job_name: str) -> str:
        """Where Ground Truth writes: ``<S3OutputPath>/<job name>/``."""
        return self._key(job_name, "output", job_name) + "/"

    def _put(self, key: str, body: bytes, content_type: str) -> None:
        try:
            self.s3.put_object(Bucket=self.config.bucket, Key=key, Body=body, ContentType=content_type)
        except Exception as exc:
            raise _error(exc, "S3 upload") from exc

    # --- publish -------------------------------------------------------------------------------
    def _upload_inputs(self, spec: LabelingJobSpec) -> dict[str, str]:
        if not spec.objects:
            raise MarketplaceError("A labeling job needs at least one data object.", permanent=True)
        manifest = "".join(json.dumps(obj, separators=(",", ":"), sort_keys=True) + "\n" for obj in spec.objects)
        uris = {"manifest": self._uri(self._key(spec.name, "input.manifest"))}
        self._put(self._key(spec.name, "input.manifest"), manifest.encode(), "application/jsonlines")
        categories = {"document-version": LABEL_CATEGORY_VERSION, "labels": [{"label": label} for label in spec.labels]}
        self._put(self._key(spec.name, "label-categories.json"), json.dumps(categories).encode(), "application/json")
        uris["categories"] = self._uri(self._key(spec.name, "label-categories.json"))
        if spec.ui_template:
            self._put(self._key(spec.name, "template.liquid.html"), spec.ui_template.encode(), "text/html")
            uris["template"] = self._uri(self._key(spec.name, "template.liquid.html"))
        return uris

    def _lambdas(self, spec: LabelingJobSpec) -> tuple[str, str]:
        if spec.task_type in BUILT_IN_TASK_TYPES:
            pre, acs = builtin_lambda_arns(spec.task_type, self.config.region)
            return spec.pre_annotation_lambda_arn or pre, spec.consolidation_lambda_arn or acs
        if not (spec.pre_annotation_lambda_arn and spec.consolidation_lambda_arn):
            raise MarketplaceError(
                "A custom task needs its pre-annotation and consolidation Lambda ARNs.", permanent=True
            )
        return spec.pre_annotation_lambda_arn, spec.consolidation_lambda_arn

    def create_params(self, spec: LabelingJobSpec, uris: Mapping[str, str]) -> dict[str, Any]:
        if not NAME_PATTERN.match(spec.name):
            raise MarketplaceError(f"{spec.name!r} is not a valid labeling job name.", permanent=True)
        if not 1 <= spec.workers_per_object <= 9:
            raise MarketplaceError("Ground Truth takes 1 to 9 workers per object.", permanent=True)
        if "template" not in uris:
            raise MarketplaceError("A labeling job needs a worker task template.", permanent=True)
        pre, acs = self._lambdas(spec)
        human: dict[str, Any] = {
            "WorkteamArn": spec.workteam_arn,
            "UiConfig": {"UiTemplateS3Uri": uris["template"]},
            "PreHumanTaskLambdaArn": pre,
            "TaskTitle": spec.title[:128] or spec.name,
            "TaskDescription": spec.description[:255] or spec.title[:255] or spec.name,
            "NumberOfHumanWorkersPerDataObject": spec.workers_per_object,
            "TaskTimeLimitInSeconds": spec.task_time_limit_seconds,
            "TaskAvailabilityLifetimeInSeconds": spec.task_availability_seconds,
            "MaxConcurrentTaskCount": spec.max_concurrent_tasks,
            "AnnotationConsolidationConfig": {"AnnotationConsolidationLambdaArn": acs},
        }
        if spec.keywords:
            human["TaskKeywords"] = list(spec.keywords)[:5]
        if spec.public_task_price is not None:
            human["PublicWorkforceTaskPrice"] = {"AmountInUsd": usd_price(spec.public_task_price)}
        params: dict[str, Any] = {
            "LabelingJobName": spec.name,
            "LabelAttributeName": spec.label_attribute,
            "InputConfig": {"DataSource": {"S3DataSource": {"ManifestS3Uri": uris["manifest"]}}},
            "OutputConfig": {"S3OutputPath": self._uri(self._key(spec.name, "output")) + "/"},
            "RoleArn": self.config.role_arn,
            "LabelCategoryConfigS3Uri": uris["categories"],
            "HumanTaskConfig": human,
            "Tags": [{"Key": k, "Value": v} for k, v in sorted(spec.tags.items())],
        }
        if spec.max_labeled_objects is not None:
            params["StoppingConditions"] = {"MaxHumanLabeledObjectCount": max(1, spec.max_labeled_objects)}
        return params

    def publish_labeling_job(self, spec: LabelingJobSpec) -> LabelingJobState:
        """Upload the inputs and create the job; an existing job of the same name is adopted."""
        uris = self._upload_inputs(spec)
        params = self.create_params(spec, uris)
        from botocore.exceptions import ClientError

        try:
            answer = self.sagemaker.create_labeling_job(**params)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceInUse":
                raise _error(exc, "create_labeling_job") from exc
            state = self.describe(spec.name)
            if state.input_manifest_uri != uris["manifest"]:
                raise MarketplaceError(
                    f"A labeling job named {spec.name} already exists but reads {state.input_manifest_uri}, "
                    "not our manifest; it is someone else's and was not adopted.",
                    permanent=True,
                    code="name_taken",
                ) from exc
            return LabelingJobState(**{**state.__dict__, "adopted": True})
        except Exception as exc:
            raise _error(exc, "create_labeling_job") from exc
        return LabelingJobState(
            name=spec.name, arn=answer["LabelingJobArn"], status="Initializing", input_manifest_uri=uris["manifest"]
        )

    # --- follow and stop -----------------------------------------------------------------------
    def describe(self, name: str) -> LabelingJobState:
        try:
            answer = self.sagemaker.describe_labeling_job(LabelingJobName=name)
        except Exception as exc:
            raise _error(exc, "describe_labeling_job") from exc
        output = answer.get("LabelingJobOutput") or {}
        source = answer.get("InputConfig", {}).get("DataSource", {}).get("S3DataSource", {})
        return LabelingJobState(
            name=answer["LabelingJobName"],
            arn=answer["LabelingJobArn"],
            status=answer["LabelingJobStatus"],
            counters=dict(answer.get("LabelCounters") or {}),
            failure_reason=answer.get("FailureReason", ""),
            output_manifest_uri=output.get("OutputDatasetS3Uri", ""),
            input_manifest_uri=source.get("ManifestS3Uri", ""),
        )

    def stop(self, name: str) -> None:
        try:
            self.sagemaker.stop_labeling_job(LabelingJobName=name)
        except Exception as exc:
            raise _error(exc, "stop_labeling_job") from exc

    # --- collect -------------------------------------------------------------------------------
    def _read(self, bucket: str, key: str) -> bytes:
        try:
            body: bytes = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as exc:
            raise _error(exc, f"S3 read of {key}") from exc
        return body

    def collect(self, state: LabelingJobState) -> CollectedOutput:
        """The output manifest (or, before it exists, the input manifest) and every worker response."""
        if state.output_manifest_uri:
            manifest = self._read(*_split_s3(state.output_manifest_uri))
            is_output = True
        else:
            manifest = self._read(self.config.bucket, self._key(state.name, "input.manifest"))
            is_output = False
        prefix = self.output_prefix(state.name) + "annotations/worker-response/"
        files: list[tuple[str, bytes]] = []
        try:
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.config.bucket, Prefix=prefix)
            keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
        except Exception as exc:
            raise _error(exc, "S3 listing") from exc
        for key in sorted(keys):
            if key.endswith(".json"):
                files.append((key, self._read(self.config.bucket, key)))
        return CollectedOutput(manifest.decode("utf-8"), is_output, files)

    # --- the per-Hit protocol, which Ground Truth does not have ------------------------------------
    def _unsupported(self, what: str) -> MarketplaceError:
        return MarketplaceError(
            f"Ground Truth has no per-Hit {what}; it runs whole labeling jobs.", permanent=True, code="unsupported"
        )

    def publish(self, spec: HitSpec) -> PublishedHit:
        raise self._unsupported("publishing")

    def list_assignments(self, external_hit_id: str) -> Sequence[AssignmentRecord]:
        raise self._unsupported("assignment listing")

    def approve(self, external_assignment_id: str, *, feedback: str = "") -> None:
        raise self._unsupported("review")

    def reject(self, external_assignment_id: str, *, feedback: str) -> None:
        raise self._unsupported("review")

    def expire(self, external_hit_id: str) -> None:
        raise self._unsupported("expiry")
