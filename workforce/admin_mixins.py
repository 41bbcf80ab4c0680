"""Admin helpers: each object's "History" button opens its audit trail."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse


class AuditHistoryMixin:
    """Send the change page's "History" button to the audit events of this object.

    ``audit_object_type`` is the ``object_type`` the services write for the model. Users who may not
    view audit events keep Django's own history page.
    """

    audit_object_type: str = ""

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if self.audit_object_type and request.user.has_perm("workforce.view_auditevent"):
            query = urlencode({"object_type": self.audit_object_type, "object_id": object_id})
            return HttpResponseRedirect(f"{reverse('admin:workforce_auditevent_changelist')}?{query}")
        return super().history_view(request, object_id, extra_context)  # type: ignore[misc]
