"""Role permissions for the API: reads need the model's ``view`` permission, writes the one the view names.

Roles (groups) and their permissions are in ``tasks.roles``: ops managers write, reviewers and finance read
what their role may see, crowd workers get nothing.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView


class RolePermission(BasePermission):
    """``read_permission`` for GET/HEAD/OPTIONS, ``write_permission`` for everything else."""

    message = "Your role does not allow this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        if request.method in SAFE_METHODS:
            perm = getattr(view, "read_permission", None)
        else:
            perm = getattr(view, "write_permission", None)
        return bool(perm and request.user.has_perm(perm))
