"""Dataset versions: list, snapshot, download (the stored bytes), diff."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, HttpResponseBase
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tasks.api.pagination import IdCursorPagination
from tasks.api.permissions import RolePermission
from tasks.api.serializers import (
    DatasetVersionCreateSerializer,
    DatasetVersionSerializer,
    VersionDiffQuerySerializer,
    VersionDiffSerializer,
)
from tasks.models import DatasetVersion, Job
from tasks.services.errors import ServiceError
from tasks.services.exports import StoredFileMissing, create_dataset_version, diff_dataset_versions, open_version_file
from workforce.audit import Actor


class DatasetVersionsView(generics.ListAPIView):
    """GET: the job's dataset versions. POST: snapshot the current consensus labels as the next version."""

    serializer_class = DatasetVersionSerializer
    permission_classes = [RolePermission]
    read_permission = "tasks.view_datasetversion"
    write_permission = "tasks.add_datasetversion"
    pagination_class = IdCursorPagination

    def get_queryset(self) -> Any:
        return DatasetVersion.objects.filter(job=get_object_or_404(Job, pk=self.kwargs["job_id"]))

    @extend_schema(request=DatasetVersionCreateSerializer, responses={201: DatasetVersionSerializer})
    def post(self, request: Request, job_id: int) -> Response:
        job = get_object_or_404(Job, pk=job_id)
        form = DatasetVersionCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            version = create_dataset_version(
                job=job, actor=Actor.from_user(request.user), note=form.validated_data["note"], created_by=request.user
            )
        except ServiceError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(DatasetVersionSerializer(version).data, status=status.HTTP_201_CREATED)


def _version(job_id: int, number: int) -> DatasetVersion:
    return get_object_or_404(DatasetVersion, job_id=job_id, number=number)


def _gone(exc: StoredFileMissing) -> Response:
    """A version whose file is missing from storage: 410 with the sentence (the row is there, its bytes are not)."""
    return Response({"detail": str(exc)}, status=status.HTTP_410_GONE)


class DatasetVersionDetailView(generics.RetrieveAPIView):
    serializer_class = DatasetVersionSerializer
    permission_classes = [RolePermission]
    read_permission = "tasks.view_datasetversion"

    def get_object(self) -> DatasetVersion:
        return _version(self.kwargs["job_id"], self.kwargs["number"])


class DatasetVersionDownloadView(APIView):
    """The version's stored JSON Lines file, byte for byte (its sha256 is in the ``ETag``)."""

    permission_classes = [RolePermission]
    read_permission = "tasks.view_datasetversion"

    @extend_schema(responses={(200, "application/x-ndjson"): OpenApiTypes.BINARY, 410: OpenApiTypes.OBJECT})
    def get(self, request: Request, job_id: int, number: int) -> HttpResponseBase:
        version = _version(job_id, number)
        try:
            handle = open_version_file(version)
        except StoredFileMissing as exc:
            return _gone(exc)
        response = FileResponse(
            handle,
            as_attachment=True,
            filename=f"job-{job_id}-v{number}.jsonl",
            content_type="application/x-ndjson",
        )
        response["ETag"] = f'"{version.sha256}"'
        return response


class DatasetVersionDiffView(APIView):
    """Labels added, removed and changed from version ``against`` to this version."""

    permission_classes = [RolePermission]
    read_permission = "tasks.view_datasetversion"

    @extend_schema(
        parameters=[VersionDiffQuerySerializer], responses={200: VersionDiffSerializer, 410: OpenApiTypes.OBJECT}
    )
    def get(self, request: Request, job_id: int, number: int) -> Response:
        query = VersionDiffQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        new, old = _version(job_id, number), _version(job_id, query.validated_data["against"])
        try:
            diff = diff_dataset_versions(old=old, new=new)
        except StoredFileMissing as exc:
            return _gone(exc)
        except ServiceError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        body = {**diff.__dict__, "summary": diff.summary()}
        body.pop("unchanged")
        return Response(VersionDiffSerializer(body).data)
