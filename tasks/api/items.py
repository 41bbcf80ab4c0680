"""A job's items (list with filters, bulk import) and assignments (list with filters)."""

from __future__ import annotations

import io
import json
from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from tasks.api.idempotent import respond_idempotently
from tasks.api.jobs import IDEMPOTENCY_PARAMETER
from tasks.api.pagination import IdCursorPagination
from tasks.api.permissions import RolePermission
from tasks.api.serializers import (
    AssignmentFilter,
    AssignmentSerializer,
    BulkImportSerializer,
    ImportResultSerializer,
    ItemFilter,
    ItemSerializer,
)
from tasks.console_selectors import list_assignments, list_items
from tasks.models import Job
from tasks.services.errors import ImportValidationError, ServiceError
from tasks.services.idempotency import request_fingerprint
from tasks.services.imports import check_upload_size, import_items
from workforce.audit import Actor
from workforce.parsers import SafeJSONParser
from workforce.privacy import can_see_worker_ids


@extend_schema_view(get=extend_schema(parameters=[ItemFilter]))
class JobItemsView(generics.ListAPIView):
    """GET: the job's items, oldest first (filters: is_gold, labeled, external_id). POST: bulk import."""

    serializer_class = ItemSerializer
    permission_classes = [RolePermission]
    read_permission = "tasks.view_item"
    write_permission = "tasks.add_item"
    pagination_class = IdCursorPagination
    parser_classes = [SafeJSONParser, MultiPartParser, FormParser]

    def get_queryset(self) -> Any:
        job = get_object_or_404(Job, pk=self.kwargs["job_id"])
        query = ItemFilter(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return list_items(job, **query.validated_data)

    @extend_schema(
        request=BulkImportSerializer, responses={201: ImportResultSerializer}, parameters=[IDEMPOTENCY_PARAMETER]
    )
    def post(self, request: Request, job_id: int) -> Response:
        job = get_object_or_404(Job, pk=job_id)
        form = BulkImportSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload = form.validated_data.get("file")
        if upload is not None:
            try:
                check_upload_size(upload.size, command="import_items")
            except ServiceError as exc:
                return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
            content = upload.read()
            filename, fmt = upload.name, form.validated_data.get("format")
        else:
            content = "".join(
                json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n" for row in form.validated_data["items"]
            ).encode()
            filename, fmt = "items.jsonl", "jsonl"

        def run() -> tuple[int, dict[str, Any]]:
            try:
                result = import_items(
                    job=job,
                    stream=io.BytesIO(content),
                    filename=filename,
                    fmt=fmt,
                    actor=Actor.from_user(request.user),
                )
            except ImportValidationError as exc:
                return 400, {
                    "detail": str(exc),
                    "bad_rows": exc.total_bad,
                    "errors": [{"line": e.line, "message": e.message} for e in exc.errors],
                }
            except ServiceError as exc:
                return 400, {"detail": str(exc)}
            body = {
                "created": result.created,
                "unchanged": result.unchanged,
                "rows": result.rows,
                "hits_created": result.hits_created,
            }
            return (status.HTTP_201_CREATED if result.created else status.HTTP_200_OK), body

        fingerprint = request_fingerprint("import", str(job.pk), fmt or filename, content)
        return respond_idempotently(request, scope=f"import:job:{job.pk}", fingerprint=fingerprint, action=run)


@extend_schema_view(get=extend_schema(parameters=[AssignmentFilter]))
class JobAssignmentsView(generics.ListAPIView):
    """A job's assignments, oldest first (filters: state, worker: the marketplace id, or the masked id that
    readers without the identity permission are shown)."""

    serializer_class = AssignmentSerializer
    permission_classes = [RolePermission]
    read_permission = "tasks.view_assignment"
    pagination_class = IdCursorPagination

    def get_queryset(self) -> Any:
        job = get_object_or_404(Job, pk=self.kwargs["job_id"])
        query = AssignmentFilter(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return list_assignments(job, **query.validated_data, masked=not can_see_worker_ids(self.request.user))
