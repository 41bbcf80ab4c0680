"""Dataset versions: list, snapshot, download (the stored bytes), diff."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, HttpResponseBase
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tasks.api.pagination import IdCursorPagination, SignedCursor
from tasks.api.permissions import RolePermission
from tasks.api.serializers import (
    DatasetVersionCreateSerializer,
    DatasetVersionSerializer,
    VersionDiffQuerySerializer,
    VersionDiffSerializer,
)
from tasks.models import DatasetVersion, Job
from tasks.services.errors import ServiceError
from tasks.services.exports import StoredFileMissing, create_dataset_version, open_version_file
from tasks.services.exports.versions import DIFF_KINDS, DiffPosition, VersionDiffPage, get_version_diff_page
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


class VersionDiffPageQuerySerializer(VersionDiffQuerySerializer):
    page_size = serializers.IntegerField(
        required=False,
        default=SignedCursor.page_size,
        min_value=1,
        max_value=SignedCursor.max_page_size,
        help_text=f"Entries per page (added, removed and changed together), at most {SignedCursor.max_page_size}.",
    )
    cursor = serializers.CharField(required=False, help_text="Where the page starts: from the `next` link.")


class VersionDiffPageSerializer(VersionDiffSerializer):
    next = serializers.URLField(allow_null=True, help_text="The next page's URL; null on the last page.")


def _diff_cursor(old: DatasetVersion, new: DatasetVersion) -> SignedCursor:
    """A cursor of this diff only: signed for the two versions and their contents."""
    return SignedCursor(f"version-diff:{new.job_id}:{old.number}:{old.sha256}:{new.number}:{new.sha256}")


def _diff_state(page: VersionDiffPage) -> dict[str, Any] | None:
    """What the next page's cursor carries: where it starts and the counts (not read again)."""
    if page.next is None:
        return None
    return {"old": page.next.old, "new": page.next.new, "summary": [page.summary[k] for k in DIFF_KINDS]}


def _diff_start(state: dict[str, Any]) -> tuple[DiffPosition, dict[str, int]]:
    summary = dict(zip(DIFF_KINDS, state["summary"], strict=True))
    return DiffPosition(old=int(state["old"]), new=int(state["new"])), summary


class DatasetVersionDiffView(APIView):
    """Labels added, removed and changed from version ``against`` to this version, a page at a time.

    A page holds up to ``page_size`` entries (100 by default, at most 500; ``added``, ``removed`` and
    ``changed`` together, in item order) and ``summary``, the whole diff's counts; ``next`` is the next page's
    URL (its opaque ``cursor``), null on the last page. A bad ``page_size`` or ``cursor`` is a 400 naming it.
    Memory holds a page, never the versions: each page reads its own rows of the two stored files (and the
    unchanged rows between them); the first page of two versions not compared before also counts the rest,
    once (the counts are cached by the files' checksums and carried in the cursor)."""

    permission_classes = [RolePermission]
    read_permission = "tasks.view_datasetversion"

    @extend_schema(
        parameters=[VersionDiffPageQuerySerializer],
        responses={200: VersionDiffPageSerializer, 410: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request, job_id: int, number: int) -> Response:
        query = VersionDiffPageQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        new, old = _version(job_id, number), _version(job_id, query.validated_data["against"])
        cursor = _diff_cursor(old, new)
        state = cursor.decode(query.validated_data.get("cursor"))
        start, summary = _diff_start(state) if state is not None else (None, None)
        try:
            page = get_version_diff_page(
                old=old, new=new, size=query.validated_data["page_size"], start=start, summary=summary
            )
        except StoredFileMissing as exc:
            return _gone(exc)
        except ServiceError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        body = {**page.__dict__, "next": cursor.next_link(request, _diff_state(page))}
        return Response(VersionDiffPageSerializer(body).data)
