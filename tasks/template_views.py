"""The worker page of a job with an MTurk HTML layout: the layout runs in a sandboxed frame.

``layout_task_page`` is our page (our origin, our script only). It frames ``task_layout``, the filled
layout served as its own document whose CSP ``sandbox`` directive (and the frame's ``sandbox`` attribute,
neither with ``allow-same-origin``) gives it an opaque origin: its scripts can read no cookie, call no
API of ours with the worker's session, and may fetch nothing. Its form's fields come back by
``postMessage`` to our page, which posts them to ``submit_layout_task``; the server validates them.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET

from tasks.models import Assignment, AssignmentState, Item
from tasks.selectors import list_page_items, list_training_feedback, task_for_page
from tasks.services.errors import ServiceError
from tasks.services.task_templates import parse_form_fields, render_template, submit_template_assignment
from workforce.models import Worker
from workforce.web import worker_action, worker_required

# Our page: our own static script and styles only; it may frame only our own documents.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# The layout: an opaque origin (sandbox without allow-same-origin), inline scripts and styles of the
# layout itself, media from https, no network calls, no form navigation, framed only by our page.
LAYOUT_CSP = (
    "sandbox allow-scripts allow-forms; default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline' https:; img-src 'self' https: http: data:; media-src 'self' https: http: data:; "
    "font-src https: data:; "
    "connect-src 'none'; form-action 'none'; base-uri 'none'; frame-ancestors 'self'"
)
FRAME_SANDBOX = "allow-scripts allow-forms"


def _open_assignment(worker: Worker, assignment_uuid: UUID) -> Assignment | None:
    assignment = Assignment.objects.select_related("job").filter(uuid=assignment_uuid, worker=worker).first()
    if assignment is None or assignment.state != AssignmentState.ACCEPTED:
        return None
    return assignment if assignment.lease_expires_at > timezone.now() else None


def layout_task_page(request: HttpRequest, worker: Worker, assignment: Assignment) -> HttpResponse:
    """The labeling page of a job with a task template (called by ``tasks.views.task_page``)."""
    response = render(
        request,
        "tasks/task_layout.html",
        {
            "worker": worker,
            "assignment": assignment,
            "job": assignment.job,
            "sandbox": FRAME_SANDBOX,
            "seconds_left": task_for_page(assignment, [])["seconds_left"],
        },
    )
    response["Content-Security-Policy"] = PAGE_CSP
    return response


@require_GET
@worker_required
@xframe_options_sameorigin
def task_layout(request: HttpRequest, worker: Worker, assignment_uuid: UUID) -> HttpResponse:
    """The filled layout, as the framed document."""
    assignment = _open_assignment(worker, assignment_uuid)
    if assignment is None or not assignment.job.task_template:
        response = HttpResponse("This task is no longer open for you.", status=404, content_type="text/plain")
    else:
        items: list[Item] = list_page_items(assignment)
        payload: dict[str, Any] = dict(items[0].payload) if items else {}
        body = render_template(assignment.job.task_template, payload)
        origin = f"{request.scheme}://{request.get_host()}"
        response = HttpResponse(render_to_string("tasks/layout_frame.html", {"body": body, "parent_origin": origin}))
    response["Content-Security-Policy"] = LAYOUT_CSP
    response["Referrer-Policy"] = "no-referrer"
    return response


@worker_action("task", key="assignment_uuid")
def submit_layout_task(request: HttpRequest, worker: Worker, assignment_uuid: UUID) -> HttpResponse:
    from tasks.views import _next_task, _own_assignment, _refused_submit  # tasks.views imports this module

    try:
        fields = parse_form_fields(request.POST.get("fields", ""))
        assignment = submit_template_assignment(assignment=assignment_uuid, worker=worker, fields=fields)
    except ServiceError as exc:
        return _refused_submit(request, worker, _own_assignment(worker, assignment_uuid), str(exc))
    return _next_task(request, worker, assignment.job, feedback=list_training_feedback(assignment))
