"""The Ground Truth Lambdas with documented request shapes, moto S3 and the real birds job's answers."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tasks.lambdas import consolidation, pre_annotation
from tests.tasks.groundtruth.data import IC_ARCHIVE, IC_MANIFEST, IC_TRUTH
from workforce.marketplaces.groundtruth.formats import iter_worker_response_files, read_worker_responses

BUCKET = "crowdops-lambda"
LABELS = ["Duck", "Sparrow", "Woodpecker", "Owl", "Parrot", "Turkey", "Falcon", "Swan", "Goose", "Canary"]
REQUEST = {
    "version": "2018-10-16",
    "labelingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:labeling-job/crowdops-7-birds",
    "labelCategories": LABELS,
    "labelAttributeName": "crowdops-label",
    "roleArn": "arn:aws:iam::123456789012:role/GT",
    "payload": {"s3Uri": f"s3://{BUCKET}/consolidation/payload.json"},
    "outputConfig": f"s3://{BUCKET}/output/annotations/",
}


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def birds_payload() -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The real job's worker responses in the consolidation payload shape, and the truth by source-ref."""
    refs = [json.loads(line)["source-ref"] for line in IC_MANIFEST.read_text().splitlines()]
    truth_by_id = {row["ImageId"]: row["Label"] for row in json.loads(IC_TRUTH.read_text())}
    objects: dict[int, dict[str, Any]] = {}
    for response in read_worker_responses(iter_worker_response_files(IC_ARCHIVE)):
        obj = objects.setdefault(
            response.dataset_object_id,
            {"datasetObjectId": str(response.dataset_object_id),
             "dataObject": {"s3Uri": refs[response.dataset_object_id]}, "annotations": []},
        )  # fmt: skip
        obj["annotations"].append(
            {"workerId": response.worker_id, "annotationData": {"content": json.dumps(response.answer_content)}}
        )
    truth = {ref: truth_by_id[PurePosixPath(ref).name.rsplit(".", 1)[0]] for ref in refs}
    return [objects[i] for i in sorted(objects)], truth


def accuracy(
    results: list[dict[str, Any]], payload: list[dict[str, Any]], truth: dict[str, str], skip: set[str]
) -> float:
    ref = {obj["datasetObjectId"]: obj["dataObject"]["s3Uri"] for obj in payload}
    scored = [r for r in results if ref[r["datasetObjectId"]] not in skip]
    right = sum(
        r["consolidatedAnnotation"]["content"]["crowdops-label-metadata"]["class-name"]
        == truth[ref[r["datasetObjectId"]]]
        for r in scored
    )
    return right / len(scored)


def test_it_consolidates_the_real_job_with_dawid_skene_and_gold_in_the_documented_shape(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload, truth = birds_payload()
    gold = {ref: label for ref, label in truth.items() if int(hashlib.sha256(ref.encode()).hexdigest(), 16) % 5 == 0}
    s3.put_object(Bucket=BUCKET, Key="consolidation/payload.json", Body=json.dumps(payload).encode())
    s3.put_object(Bucket=BUCKET, Key="gold.json", Body=json.dumps(gold).encode())
    monkeypatch.setenv("CROWDOPS_GOLD_S3_URI", f"s3://{BUCKET}/gold.json")
    results = consolidation.handler(REQUEST, None, s3=s3)
    assert len(results) == 302 and {r["datasetObjectId"] for r in results} == {str(i) for i in range(302)}
    first = next(r for r in results if r["datasetObjectId"] == "0")
    content = first["consolidatedAnnotation"]["content"]
    assert set(content) == {"crowdops-label", "crowdops-label-metadata"}
    assert LABELS[content["crowdops-label"]] == content["crowdops-label-metadata"]["class-name"]
    gold_results = [
        r
        for r in results
        if r["consolidatedAnnotation"]["content"]["crowdops-label-metadata"]["consolidation"].endswith("-gold")
    ]
    assert len(gold_results) == len(gold)
    assert accuracy(gold_results, payload, truth, set()) == 1.0  # clamped to the known answers
    # On the objects without gold, as accurate as Ground Truth's own consolidation (89-90% here).
    gt = {json.loads(line)["source-ref"]: json.loads(line)["birds-open-images-clone-metadata"]["class-name"]
          for line in IC_MANIFEST.read_text().splitlines()}  # fmt: skip
    rest = [ref for ref in truth if ref not in gold]
    gt_accuracy = sum(gt[ref] == truth[ref] for ref in rest) / len(rest)
    assert accuracy(results, payload, truth, set(gold)) >= gt_accuracy


def test_answers_that_are_not_labels_pass_through_per_worker() -> None:
    box = {"crowd-bounding-box": {"boundingBoxes": [{"label": "Bird", "left": 1, "top": 2, "width": 3, "height": 4}]}}
    annotation = {"workerId": "private.us-east-1.a", "annotationData": {"content": json.dumps(box)}}
    payload = [{"datasetObjectId": "4", "dataObject": {"s3Uri": "s3://b/x.jpg"}, "annotations": [annotation]}]
    [result] = consolidation.consolidate(REQUEST, payload)
    assert result == {
        "datasetObjectId": "4",
        "consolidatedAnnotation": {
            "content": {
                "crowdops-label": {
                    "annotationsFromAllWorkers": [{"workerId": "private.us-east-1.a", "annotationData": box}]
                }
            }
        },
    }


def test_an_unknown_request_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        consolidation.consolidate({**REQUEST, "version": "2030-01-01"}, [])


@pytest.mark.parametrize(
    ("data_object", "required"),
    [
        ({"source-ref": "s3://b/a.jpg"}, True),
        ({"source-ref": "s3://b/a.jpg", "crowdops-prelabel": {"label": "Duck", "confidence": 0.99}}, False),
        ({"source-ref": "s3://b/a.jpg", "crowdops-prelabel": {"label": "Duck", "confidence": 0.6}}, True),
        ({"source": "some text", "crowdops-prelabel": {"label": None, "confidence": 0.99}}, True),
    ],
)
def test_pre_annotation_skips_only_confidently_prelabeled_objects(
    data_object: dict[str, Any], required: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROWDOPS_LABELS", json.dumps(["Duck", "Owl"]))
    event = {"version": "2018-10-16", "labelingJobArn": REQUEST["labelingJobArn"], "dataObject": data_object}
    answer = pre_annotation.handler(event, None)
    assert answer["isHumanAnnotationRequired"] is required
    assert answer["taskInput"]["taskObject"] == data_object.get("source-ref", data_object.get("source"))
    assert answer["taskInput"]["labels"] == ["Duck", "Owl"]


def test_the_lambdas_import_without_django() -> None:
    code = "import sys, tasks.lambdas.consolidation, tasks.lambdas.pre_annotation; sys.exit('django' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
