"""Jobs: create, configure, publish, pause, resume, cancel, status."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from tasks.api.idempotent import HEADER, respond_idempotently
from tasks.api.pagination import IdCursorPagination
from tasks.api.permissions import RolePermission
from tasks.api.serializers import AcceptedSerializer, JobSerializer, JobStatusSerializer
from tasks.api.views import progress_fields
from tasks.console_selectors import count_labeled
from tasks.models import Job
from tasks.selectors_adaptive import get_adaptive_progress
from tasks.services.errors import QueueUnavailable, ServiceError
from tasks.services.idempotency import request_fingerprint
from tasks.services.jobs import configure_job
from tasks.services.publishing import cancel_job, pause_job, request_publish, resume_job
from tasks.tasks import (
    BROKER_ERRORS,
    QUEUE_UNREACHABLE,
    check_queue_reachable,
    compute_consensus_task,
    enqueue,
)
from workforce.audit import Actor

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER, str, OpenApiParameter.HEADER, required=False, description="Retry-safe key: a retry replays the response."
)


def _error(exc: ServiceError) -> Response:
    return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)


_NOT_PUBLISHED = (
    f"{QUEUE_UNREACHABLE}, so job {{job}} was not published; it is still a draft. Try again in a few minutes."
)


def _queue_down(detail: str) -> Response:
    """The broker is unreachable: a 503 with the sentence (never an HTML 500)."""
    return Response({"detail": detail}, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "60"})


class JobViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = JobSerializer
    permission_classes = [RolePermission]
    read_permission = "tasks.view_job"
    write_permission = "tasks.change_job"
    pagination_class = IdCursorPagination

    def get_queryset(self) -> QuerySet[Job]:
        return Job.objects.all()

    def _save(self, serializer: Any, job: Job) -> Response:
        data = dict(serializer.validated_data)
        confirmed = data.pop("confirm_instructions_change", False)
        for name, value in data.items():
            setattr(job, name, value)
        try:
            job.full_clean(exclude=["created_by", "trusted_test"])
        except DjangoValidationError as exc:
            return Response(exc.message_dict, status=status.HTTP_400_BAD_REQUEST)
        try:
            configure_job(
                job=job,
                actor=Actor.from_user(self.request.user),
                instructions_confirmed=bool(confirmed),
                user=self.request.user,
            )
        except ServiceError as exc:
            return _error(exc)
        job.refresh_from_db()
        return Response(JobSerializer(job).data, status=status.HTTP_201_CREATED if serializer.instance is None else 200)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self._save(serializer, Job(created_by=request.user))  # type: ignore[misc]

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        job = self.get_object()
        serializer = self.get_serializer(job, data=request.data, partial=kwargs.pop("partial", False))
        serializer.is_valid(raise_exception=True)
        return self._save(serializer, job)

    @extend_schema(request=None, responses={202: AcceptedSerializer}, parameters=[IDEMPOTENCY_PARAMETER])
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str) -> Response:
        """Build the job's Hits and open them (in the background). Send an Idempotency-Key to retry safely."""
        job = self.get_object()

        def run() -> tuple[int, dict[str, Any]]:
            # A broker that is down is found before the key's response is stored, so a retry runs again.
            check_queue_reachable()
            try:
                request_publish(job=job, actor=Actor.from_user(request.user))
            except QueueUnavailable:
                raise  # 503 below: nothing was stored under the key, so a retry runs again
            except ServiceError as exc:
                return 400, {"detail": str(exc)}
            return 202, {"job": job.pk, "detail": "Publishing started."}

        try:
            return respond_idempotently(
                request,
                scope=f"publish:job:{job.pk}",
                fingerprint=request_fingerprint("publish", str(job.pk)),
                action=run,
            )
        except QueueUnavailable:
            return _queue_down(_NOT_PUBLISHED.format(job=job.pk))
        except BROKER_ERRORS:  # check_queue_reachable, before anything was stored under the key
            return _queue_down(_NOT_PUBLISHED.format(job=job.pk))

    def _transition(self, request: Request, service: Any) -> Response:
        job = self.get_object()
        try:
            job = service(job=job, actor=Actor.from_user(request.user))
        except QueueUnavailable:  # an MTurk job's HITs are updated in the background after the state changed
            job.refresh_from_db()
            return _queue_down(
                f"{QUEUE_UNREACHABLE}: job {job.pk} is now {job.state} here, but its marketplace could not be told "
                "(its HITs there were not updated yet; the hourly MTurk reconcile brings them in line)."
            )
        except ServiceError as exc:
            return _error(exc)
        return Response(JobSerializer(job).data)

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str) -> Response:
        return self._transition(request, pause_job)

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        return self._transition(request, resume_job)

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        return self._transition(request, cancel_job)

    @extend_schema(request=None, responses={202: AcceptedSerializer})
    @action(detail=True, methods=["post"])
    def consensus(self, request: Request, pk: str) -> Response:
        """Recompute the job's consensus labels with its configured method (in the background)."""
        job = self.get_object()
        if not job.answers.exists():
            return Response({"detail": f"Job {job.pk} has no answers yet."}, status=status.HTTP_400_BAD_REQUEST)
        user_id = request.user.pk
        try:
            transaction.on_commit(partial(enqueue, compute_consensus_task, job_id=job.pk, user_id=user_id))
        except QueueUnavailable:
            return _queue_down(
                f"{QUEUE_UNREACHABLE}, so consensus of job {job.pk} was not queued. Try again in a few minutes."
            )
        return Response({"job": job.pk, "detail": "Consensus queued."}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=JobStatusSerializer)
    @action(detail=True, methods=["get"])
    def status(self, request: Request, pk: str) -> Response:
        job = self.get_object()
        labeled, confident = count_labeled(job)
        progress = {
            **progress_fields(job),
            "labeled_items": labeled,
            "confident_items": confident,
            "adaptive": get_adaptive_progress(job),
        }
        return Response(JobStatusSerializer(progress).data)
