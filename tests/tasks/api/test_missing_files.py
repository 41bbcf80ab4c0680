"""A dataset version or export whose file is gone from MEDIA_ROOT (another host, a fresh container, a lost
volume) answers 410 with a sentence over the API and an error message in the admin, never a 500."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.test import Client
from rest_framework.test import APIClient

from tasks.models import DatasetVersion, ExportState, Job, LabelExport
from tasks.services.exports import create_dataset_version, request_label_export
from workforce.audit import Actor

SYSTEM = Actor.system("tests")


def _snapshot_then_lose_its_file(job: Job) -> DatasetVersion:
    version = create_dataset_version(job=job, actor=SYSTEM)
    Path(version.content.path).unlink()
    return version


def test_downloading_a_version_whose_file_is_gone_is_410_with_a_sentence(api: APIClient, labeled_job: Job) -> None:
    version = _snapshot_then_lose_its_file(labeled_job)
    response = api.get(f"/api/jobs/{labeled_job.pk}/versions/{version.number}/download/")
    assert response.status_code == 410
    assert response["Content-Type"].startswith("application/json")
    detail = response.json()["detail"]
    assert f"dataset version {version.number} of job {labeled_job.pk} is missing" in detail
    assert "MEDIA_ROOT" in detail and str(version.content.path) not in detail


def test_diffing_against_a_version_whose_file_is_gone_is_410(api: APIClient, labeled_job: Job) -> None:
    old = _snapshot_then_lose_its_file(labeled_job)
    new = create_dataset_version(job=labeled_job, actor=SYSTEM)
    response = api.get(f"/api/jobs/{labeled_job.pk}/versions/{new.number}/diff/", {"against": old.number})
    assert response.status_code == 410
    assert f"dataset version {old.number}" in response.json()["detail"]


def test_streaming_an_export_of_a_version_whose_file_is_gone_is_410(api: APIClient, labeled_job: Job) -> None:
    version = _snapshot_then_lose_its_file(labeled_job)
    response = api.get(f"/api/jobs/{labeled_job.pk}/export/", {"format": "csv", "version": str(version.number)})
    assert response.status_code == 410
    assert "missing from storage" in response.json()["detail"]


def test_a_background_export_of_a_version_whose_file_is_gone_fails_with_the_reason(
    labeled_job: Job, django_capture_on_commit_callbacks: Any
) -> None:
    version = _snapshot_then_lose_its_file(labeled_job)
    with django_capture_on_commit_callbacks(execute=True):
        export = request_label_export(job=labeled_job, fmt="csv", actor=SYSTEM, version=version)
    export.refresh_from_db()
    assert export.state == ExportState.FAILED  # not left "running" for ever by a FileNotFoundError
    assert "missing from storage" in export.error


def test_the_admin_download_of_an_export_whose_file_is_gone_says_so(
    client: Client, admin_user: Any, labeled_job: Job, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        export = request_label_export(job=labeled_job, fmt="csv", actor=SYSTEM)
    export.refresh_from_db()
    assert export.state == ExportState.DONE
    Path(export.file.path).unlink()
    client.force_login(admin_user)
    url = f"/admin/tasks/job/{labeled_job.pk}/exports/{export.pk}/download/"
    response = client.get(url, secure=True, follow=True)
    assert response.status_code == 200
    messages = [str(m) for m in response.context["messages"]]
    assert any(f"The file of export {export.pk}" in m and "ask for the export again" in m for m in messages)
    assert LabelExport.objects.get(pk=export.pk).state == ExportState.DONE
