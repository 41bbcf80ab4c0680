"""Model predictions over the API: import a model's predictions for a job, read its active-learning view, and
export the items the model should be retrained on (what the admin's prediction pages offer)."""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import URLPattern, path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tasks.api.views import HasModelPermission, import_refused
from tasks.models import Job
from tasks.selectors_predictions import (
    count_disagreements_by_day,
    iter_retraining_csv,
    list_active_learning,
    list_model_names,
)
from tasks.services.errors import ImportValidationError, ServiceError
from tasks.services.predictions import MAX_MODEL_NAME, import_predictions
from workforce.audit import Actor

ORDERS = ("uncertainty", "disagreement")
MAX_LIMIT = 1000


class PredictionImportRequest(serializers.Serializer):
    file = serializers.FileField(help_text="CSV (external_id,label,score) or JSON Lines, as the command reads.")
    model_name = serializers.CharField(max_length=MAX_MODEL_NAME)


class PredictionImportView(APIView):
    """POST one model's predictions for a job (multipart ``file`` and ``model_name``); all rows or none."""

    parser_classes = [MultiPartParser, FormParser]
    permission_classes = [IsAuthenticated, HasModelPermission]
    required_permission = "tasks.add_prediction"

    @extend_schema(
        request=PredictionImportRequest,
        responses=inline_serializer(
            "PredictionImportResult",
            {
                "model_name": serializers.CharField(),
                **{n: serializers.IntegerField() for n in ("rows", "created", "updated", "hits_reprioritised")},
            },
        ),
    )
    def post(self, request: Request, job_id: int) -> Response:
        job = get_object_or_404(Job, pk=job_id)
        form = PredictionImportRequest(data=request.data)
        form.is_valid(raise_exception=True)
        upload = form.validated_data["file"]
        try:
            result = import_predictions(
                job=job,
                stream=upload,
                filename=upload.name,
                model_name=form.validated_data["model_name"],
                actor=Actor.from_user(request.user),
            )
        except ImportValidationError as exc:
            return import_refused(exc)
        except ServiceError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(
            {
                "model_name": result.model_name,
                "rows": result.rows,
                "created": result.created,
                "updated": result.updated,
                "hits_reprioritised": result.hits_reprioritised,
            },
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


def _model_of(job: Job, request: Request) -> tuple[str, list[str]]:
    """The model asked for (``?model=``; else the job's pre-label model, else its first), and every model the job
    has predictions of; a ServiceError when there is none to read."""
    models = list_model_names(job)
    if not models:
        raise ServiceError(f"Job {job.pk} has no model predictions; import some first.")
    name = request.query_params.get("model") or job.prelabel_model or models[0]
    if name not in models:
        raise ServiceError(f"Job {job.pk} has no predictions of the model {name!r}; it has: {', '.join(models)}.")
    return name, models


_MODEL = OpenApiParameter("model", OpenApiTypes.STR, description="A model with predictions for the job.")


class ActiveLearningView(APIView):
    """GET a job's items by model uncertainty or by model-vs-consensus disagreement, with counts per day."""

    permission_classes = [IsAuthenticated, HasModelPermission]
    required_permission = "tasks.view_prediction"

    @extend_schema(
        parameters=[
            _MODEL,
            OpenApiParameter("order", OpenApiTypes.STR, enum=list(ORDERS)),
            OpenApiParameter("limit", OpenApiTypes.INT, description=f"1 to {MAX_LIMIT} items (200)."),
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request: Request, job_id: int) -> Response:
        job = get_object_or_404(Job, pk=job_id)
        order = request.query_params.get("order", "uncertainty")
        if order not in ORDERS:
            return Response({"detail": f"order must be one of {', '.join(ORDERS)}."}, status=400)
        raw_limit = request.query_params.get("limit", "200")
        if not (raw_limit.isascii() and raw_limit.isdigit() and 1 <= int(raw_limit) <= MAX_LIMIT):
            return Response({"detail": f"limit must be a whole number from 1 to {MAX_LIMIT}."}, status=400)
        try:
            model_name, models = _model_of(job, request)
        except ServiceError as exc:
            return Response({"detail": str(exc)}, status=400)
        rows = list_active_learning(job, model_name=model_name, order=order, limit=int(raw_limit))
        body: dict[str, Any] = {
            "model": model_name,
            "models": models,
            "order": order,
            "items": [
                {
                    "item": r.item_id,
                    "external_id": r.external_id,
                    "predicted": r.predicted,
                    "score": r.score,
                    "consensus": r.consensus,
                    "confidence": r.confidence,
                    "disagrees": r.disagrees,
                }
                for r in rows
            ],
            "by_day": [
                {"day": d["day"].isoformat(), "answers": d["answers"], "disagreeing": d["disagreeing"]}
                for d in count_disagreements_by_day(job, model_name=model_name)
            ],
        }
        return Response(body)


class RetrainingExportView(APIView):
    """GET a CSV of the items a model should be retrained on (the crowd contradicts it, or it was unsure)."""

    permission_classes = [IsAuthenticated, HasModelPermission]
    required_permission = "tasks.view_prediction"

    @extend_schema(parameters=[_MODEL], responses={(200, "text/csv"): OpenApiTypes.STR})
    def get(self, request: Request, job_id: int) -> Response | StreamingHttpResponse:
        job = get_object_or_404(Job, pk=job_id)
        try:
            model_name, _ = _model_of(job, request)
        except ServiceError as exc:
            return Response({"detail": str(exc)}, status=400)
        response = StreamingHttpResponse(iter_retraining_csv(job, model_name=model_name), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="job-{job.pk}-retrain.csv"'
        return response


def urlpatterns(prefix: str) -> list[URLPattern]:
    return [
        path(f"{prefix}predictions/import/", PredictionImportView.as_view(), name="api-job-predictions-import"),
        path(f"{prefix}predictions/active-learning/", ActiveLearningView.as_view(), name="api-job-active-learning"),
        path(f"{prefix}predictions/retraining.csv", RetrainingExportView.as_view(), name="api-job-retraining"),
    ]
