"""Consensus labels (paged, filtered by confidence), worker scores, costs, and label exports."""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tasks.api.pagination import IdCursorPagination, ItemCursorPagination
from tasks.api.permissions import RolePermission
from tasks.api.serializers import (
    ConsensusFilter,
    ConsensusLabelSerializer,
    CostSummarySerializer,
    ExportQuerySerializer,
    LabelExportSerializer,
    WorkerScoreSerializer,
)
from tasks.console_selectors import get_cost_summary, list_consensus, list_worker_scores
from tasks.models import DatasetVersion, Job, LabelExport
from tasks.services.errors import ServiceError
from tasks.services.exports import (
    ExportNotStarted,
    ExportOptions,
    StoredFileMissing,
    get_exporter,
    request_label_export,
    stream_labels,
)
from workforce.audit import Actor
from workforce.privacy import can_see_worker_ids


@extend_schema_view(get=extend_schema(parameters=[ConsensusFilter]))
class ConsensusLabelsView(generics.ListAPIView):
    """A job's consensus labels in item order (filters: min_confidence, max_confidence, label)."""

    serializer_class = ConsensusLabelSerializer
    permission_classes = [RolePermission]
    read_permission = "tasks.view_consensuslabel"
    pagination_class = ItemCursorPagination

    def get_queryset(self) -> Any:
        job = get_object_or_404(Job, pk=self.kwargs["job_id"])
        query = ConsensusFilter(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return list_consensus(job, **query.validated_data)


class WorkerScoresView(generics.ListAPIView):
    """The workers on a job and their scores (gold accuracy with its interval, agreement, speed)."""

    serializer_class = WorkerScoreSerializer
    permission_classes = [RolePermission]
    read_permission = "tasks.view_workerjobscore"
    pagination_class = IdCursorPagination

    def get_queryset(self) -> Any:
        return list_worker_scores(get_object_or_404(Job, pk=self.kwargs["job_id"]))


class CostSummaryView(APIView):
    """The job's ledger totals: net total, committed and charged, by kind and by marketplace."""

    permission_classes = [RolePermission]
    read_permission = "tasks.view_costentry"

    @extend_schema(responses=CostSummarySerializer)
    def get(self, request: Request, job_id: int) -> Response:
        job = get_object_or_404(Job, pk=job_id)
        return Response(CostSummarySerializer(get_cost_summary(job).__dict__).data)


def _export_request(request: Request, job: Job) -> tuple[str, ExportOptions, DatasetVersion | None]:
    query = ExportQuerySerializer(data=request.query_params if request.method == "GET" else request.data)
    query.is_valid(raise_exception=True)
    data = query.validated_data
    version = None
    if data["version"] is not None:
        version = DatasetVersion.objects.filter(job=job, number=data["version"]).first()
        if version is None:
            raise ServiceError(f"Job {job.pk} has no dataset version {data['version']}.")
    options = ExportOptions(
        answers=data["answers"],
        scores=data["scores"],
        cost=data["cost"],
        min_confidence=data["min_confidence"],
        worker_ids=can_see_worker_ids(request.user),
    )
    return data["format"], options, version


class FormatIsAnExportFormat(DefaultContentNegotiation):
    """``?format=`` names the export format here, not a DRF renderer."""

    def select_renderer(self, request: Request, renderers: Any, format_suffix: Any = None) -> Any:
        return super().select_renderer(request, renderers, None)

    def filter_renderers(self, renderers: Any, format: str) -> Any:
        return renderers


class LabelExportView(APIView):
    """GET streams the export now (any size, chunk by chunk); POST queues it in the background."""

    content_negotiation_class = FormatIsAnExportFormat
    permission_classes = [RolePermission]
    read_permission = "tasks.view_consensuslabel"
    write_permission = "tasks.add_labelexport"

    @extend_schema(
        parameters=[ExportQuerySerializer],
        responses={
            (200, "application/x-ndjson"): OpenApiTypes.BINARY,
            (200, "text/csv"): OpenApiTypes.BINARY,
            (200, "application/json"): OpenApiTypes.OBJECT,
        },
    )
    def get(self, request: Request, job_id: int) -> Any:
        job = get_object_or_404(Job, pk=job_id)
        try:
            fmt, options, version = _export_request(request, job)
            exporter = get_exporter(fmt)
            stream = stream_labels(
                job=job, fmt=fmt, actor=Actor.from_user(request.user), options=options, version=version
            )
        except StoredFileMissing as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_410_GONE)
        except ServiceError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        response = StreamingHttpResponse(stream, content_type=exporter.content_type)
        suffix = f"-v{version.number}" if version else ""
        response["Content-Disposition"] = f'attachment; filename="job-{job.pk}{suffix}.{exporter.extension}"'
        return response

    @extend_schema(request=ExportQuerySerializer, responses={202: LabelExportSerializer})
    def post(self, request: Request, job_id: int) -> Response:
        job = get_object_or_404(Job, pk=job_id)
        try:
            fmt, options, version = _export_request(request, job)
            export = request_label_export(
                job=job,
                fmt=fmt,
                options=options,
                version=version,
                actor=Actor.from_user(request.user),
                created_by=request.user,
            )
        except ExportNotStarted as exc:  # recorded, but the broker is down: the beat sweep queues it later
            body = {"detail": str(exc), "export": exc.export_id, "state": "queued"}
            return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        except ServiceError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(LabelExportSerializer(export).data, status=status.HTTP_202_ACCEPTED)


class LabelExportStatusView(generics.RetrieveAPIView):
    """A background export's state and progress (rows done of rows total)."""

    serializer_class = LabelExportSerializer
    permission_classes = [RolePermission]
    read_permission = "tasks.view_labelexport"

    def get_object(self) -> LabelExport:
        return get_object_or_404(LabelExport, pk=self.kwargs["export_id"], job_id=self.kwargs["job_id"])
