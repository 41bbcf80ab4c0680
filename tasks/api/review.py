"""Reviewing one assignment: approve, reject (with feedback), pay a bonus; all through ``tasks.services.review``.

POST ``/api/jobs/<job>/assignments/<assignment>/approve/`` ``{"feedback": ""}``,
``.../reject/`` ``{"feedback": "..."}`` (required), ``.../bonus/`` ``{"amount": "0.25", "reason": "...",
"key": "..."}``: the bonus is paid once per ``key`` (a retry with the same key pays nothing more).
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tasks.api.permissions import RolePermission
from tasks.models import Assignment
from tasks.services.errors import ServiceError
from tasks.services.review import approve_assignment, pay_bonus, reject_assignment
from workforce.audit import Actor

MAX_FEEDBACK = 1024


class ApproveSerializer(serializers.Serializer):
    feedback = serializers.CharField(max_length=MAX_FEEDBACK, required=False, allow_blank=True, default="")


class RejectSerializer(serializers.Serializer):
    feedback = serializers.CharField(max_length=MAX_FEEDBACK, help_text="Shown to the worker: what was wrong.")


class BonusSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=8, decimal_places=2, min_value=0)
    reason = serializers.CharField(max_length=MAX_FEEDBACK)
    key = serializers.CharField(max_length=120, help_text="Your id for this bonus: it is paid once per key.")


class ReviewResultSerializer(serializers.Serializer):
    assignment = serializers.UUIDField()
    state = serializers.CharField()
    paid = serializers.BooleanField(required=False)


class _AssignmentReview(APIView):
    permission_classes = [RolePermission]
    read_permission = "tasks.view_assignment"
    write_permission = "tasks.change_assignment"
    serializer: type[serializers.Serializer]

    def post(self, request: Request, job_id: int, assignment_id: int) -> Response:
        rows = Assignment.objects.select_related("job", "worker")
        assignment = get_object_or_404(rows, pk=assignment_id, job_id=job_id)
        data = self.serializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            body = self.review(assignment, dict(data.validated_data), Actor.from_user(request.user))
        except ServiceError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(body)

    def review(self, assignment: Assignment, data: dict[str, Any], actor: Actor) -> dict[str, Any]:
        raise NotImplementedError


@extend_schema(request=ApproveSerializer, responses=ReviewResultSerializer)
class ApproveAssignmentView(_AssignmentReview):
    serializer = ApproveSerializer

    def review(self, assignment: Assignment, data: dict[str, Any], actor: Actor) -> dict[str, Any]:
        done = approve_assignment(assignment=assignment, actor=actor, feedback=data["feedback"])
        return {"assignment": str(done.uuid), "state": done.state}


@extend_schema(request=RejectSerializer, responses=ReviewResultSerializer)
class RejectAssignmentView(_AssignmentReview):
    serializer = RejectSerializer

    def review(self, assignment: Assignment, data: dict[str, Any], actor: Actor) -> dict[str, Any]:
        done = reject_assignment(assignment=assignment, actor=actor, feedback=data["feedback"])
        return {"assignment": str(done.uuid), "state": done.state}


@extend_schema(request=BonusSerializer, responses=ReviewResultSerializer)
class BonusAssignmentView(_AssignmentReview):
    serializer = BonusSerializer

    def review(self, assignment: Assignment, data: dict[str, Any], actor: Actor) -> dict[str, Any]:
        paid = pay_bonus(
            job=assignment.job,
            worker=assignment.worker,
            assignment=assignment,
            amount=data["amount"],
            reason=data["reason"],
            key=f"api:{data['key']}",
            actor=actor,
        )
        assignment.refresh_from_db(fields=["state"])
        return {"assignment": str(assignment.uuid), "state": assignment.state, "paid": paid}


def urlpatterns(prefix: str) -> list[Any]:
    from django.urls import path

    base = prefix + "assignments/<id:assignment_id>/"
    return [
        path(f"{base}approve/", ApproveAssignmentView.as_view(), name="api-assignment-approve"),
        path(f"{base}reject/", RejectAssignmentView.as_view(), name="api-assignment-reject"),
        path(f"{base}bonus/", BonusAssignmentView.as_view(), name="api-assignment-bonus"),
    ]
