"""REST endpoints. Thin: validate input, call one service, render its result."""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import BasePermission, IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from tasks.models import Job
from tasks.selectors import get_job_progress
from tasks.services.errors import ImportValidationError, ServiceError
from tasks.services.imports import FORMATS, import_items
from workforce.audit import Actor


class HasModelPermission(BasePermission):
    """Require the Django permission named by the view's ``required_permission``."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        perm = getattr(view, "required_permission", None)
        return bool(perm and request.user and request.user.has_perm(perm))


def import_refused(exc: ImportValidationError) -> Response:
    """The 400 of an import refused whole: the sentence, how many rows were bad, and the first ones by line."""
    return Response(
        {
            "detail": str(exc),
            "bad_rows": exc.total_bad,
            "errors": [{"line": e.line, "message": e.message} for e in exc.errors],
        },
        status=status.HTTP_400_BAD_REQUEST,
    )


class ImportRequest(serializers.Serializer):
    file = serializers.FileField()
    format = serializers.ChoiceField(choices=FORMATS, required=False)


class ItemImportView(APIView):
    """POST a CSV or JSON Lines file (multipart field ``file``) to add items to a job."""

    parser_classes = [MultiPartParser, FormParser]
    permission_classes = [IsAuthenticated, HasModelPermission]
    required_permission = "tasks.add_item"

    @extend_schema(
        request=ImportRequest,
        responses=inline_serializer(
            "ItemImportResult",
            {name: serializers.IntegerField() for name in ("created", "unchanged", "rows", "hits_created")},
        ),
    )
    def post(self, request: Request, job_id: int) -> Response:
        job = get_object_or_404(Job, pk=job_id)
        form = ImportRequest(data=request.data)
        form.is_valid(raise_exception=True)
        upload = form.validated_data["file"]
        try:
            result = import_items(
                job=job,
                stream=upload,
                filename=upload.name,
                fmt=form.validated_data.get("format"),
                actor=Actor.from_user(request.user),
            )
        except ImportValidationError as exc:
            return import_refused(exc)
        except ServiceError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return Response(
            {
                "created": result.created,
                "unchanged": result.unchanged,
                "rows": result.rows,
                "hits_created": result.hits_created,
            },
            status=code,
        )


class JobProgressView(APIView):
    permission_classes = [IsAuthenticated, HasModelPermission]
    required_permission = "tasks.view_job"

    @extend_schema(
        responses=inline_serializer(
            "JobProgress",
            {
                "job": serializers.IntegerField(),
                "state": serializers.CharField(),
                **{
                    name: serializers.IntegerField()
                    for name in ("hits", "hits_complete", "answers_wanted", "answers_submitted", "percent")
                },
            },
        )
    )
    def get(self, request: Request, job_id: int) -> Response:
        return Response(progress_fields(get_object_or_404(Job, pk=job_id)))


def progress_fields(job: Job) -> dict[str, Any]:
    """A job's state and progress counters, as the progress and status endpoints answer them."""
    p = get_job_progress(job)
    return {
        "job": job.pk,
        "state": job.state,
        "hits": p.hits,
        "hits_complete": p.hits_complete,
        "answers_wanted": p.answers_wanted,
        "answers_submitted": p.answers_submitted,
        "percent": p.percent,
    }


API_ROOT_LINKS = (("jobs", "api-job-list"), ("schema", "api-schema"), ("docs", "api-docs"))


class ApiRootView(APIView):
    """``GET /api/``: where to start, for staff (crowd workers have no API): the job list, the schema and the
    interactive docs."""

    permission_classes = [IsAdminUser]

    @extend_schema(
        responses=inline_serializer(
            "ApiRoot",
            {"jobs": serializers.URLField(), "schema": serializers.URLField(), "docs": serializers.URLField()},
        )
    )
    def get(self, request: Request) -> Response:
        return Response(
            {name: reverse(view, request=request) for name, view in API_ROOT_LINKS},
        )


API_ROOT_LINKS = (("jobs", "api-job-list"), ("schema", "api-schema"), ("docs", "api-docs"))
