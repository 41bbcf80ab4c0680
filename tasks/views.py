"""The internal pool's worker pages: job list, labeling page, submit, skip. Thin: parse, call, render."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from tasks.models import DONE_ASSIGNMENT_STATES, Assignment, AssignmentState, Job, JobState
from tasks.selectors import (
    count_worker_submitted,
    has_worked_on_job,
    list_jobs_for_worker,
    list_page_items,
    list_training_feedback,
    task_for_page,
)
from tasks.selectors_predictions import attach_prelabels
from tasks.services.collection import submit_assignment
from tasks.services.errors import NoWorkAvailable, ServiceError
from tasks.services.pool import assign_next_hit, return_assignment
from tasks.template_views import layout_task_page
from workforce.models import Marketplace, Worker
from workforce.web import worker_action, worker_required


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_staff:
        return redirect("admin:index")
    return redirect("work-list")


@require_GET
@worker_required
def work_list(request: HttpRequest, worker: Worker) -> HttpResponse:
    return render(
        request,
        "tasks/work_list.html",
        {"worker": worker, "cards": list_jobs_for_worker(worker), "submitted": count_worker_submitted(worker)},
    )


def _wants_json(request: HttpRequest) -> bool:
    """The labeling page's script asks for JSON so the next task arrives without a page load."""
    return "application/json" in request.headers.get("Accept", "")


def _next_task(
    request: HttpRequest, worker: Worker, job: Job, feedback: list[dict[str, Any]] | None = None
) -> HttpResponse:
    """The worker's next task in ``job``, after the training ``feedback`` on the page just submitted."""
    try:
        assignment = assign_next_hit(job=job, worker=worker)
    except ServiceError as exc:
        return _no_next_task(request, job, feedback or [], exc)
    if _wants_json(request):
        return JsonResponse(
            {"next": task_for_page(assignment, list_page_items(assignment)), **_feedback(job, feedback)}
        )
    _flash_feedback(request, job, feedback or [])
    return redirect("task", assignment_uuid=assignment.uuid)


def _no_next_task(
    request: HttpRequest, job: Job, feedback: list[dict[str, Any]], refusal: ServiceError
) -> HttpResponse:
    """No next task (none left, or the job stopped): the feedback on the page just submitted still comes
    first, then the job list says why."""
    level = messages.INFO if isinstance(refusal, NoWorkAvailable) else messages.ERROR
    if _wants_json(request):  # the script shows the feedback, then follows the redirect
        messages.add_message(request, level, str(refusal))
        body = {"next": None, **_feedback(job, feedback), "message": str(refusal), "redirect": reverse("work-list")}
        return JsonResponse(body)
    _flash_feedback(request, job, feedback)
    messages.add_message(request, level, str(refusal))
    return redirect("work-list")


def _feedback(job: Job, feedback: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The JSON reply's training feedback: the raw instructions for API-like callers; the page's script points
    to its own rendered box."""
    return {"feedback": {"missed": feedback, "instructions": job.instructions}} if feedback else {}


def _flash_feedback(request: HttpRequest, job: Job, feedback: list[dict[str, Any]]) -> None:
    for missed in feedback:
        messages.warning(request, _feedback_text(missed, several=job.items_per_hit > 1))


def _feedback_text(missed: dict[str, Any], *, several: bool) -> str:
    """One missed gold item of a training page, in words (an empty multi-label answer is "no label")."""
    where = f"item {missed['item']}: " if missed.get("item") and several else ""
    given = missed["your_answer"]
    answered = f"you answered {_answer_text(given)}" if given not in (None, "", []) else "you chose no label"
    return f"Training, {where}{answered}, the correct answer was {_answer_text(missed['correct'])}."


def _answer_text(value: Any) -> str:
    if value in (None, "", []):
        return "no label"
    return ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _refused(request: HttpRequest, assignment: Assignment, message: str) -> HttpResponse:
    """A refused submit or skip: back to the task while it is still open, else to the job list."""
    assignment.refresh_from_db(fields=["state"])
    still_open = assignment.state == AssignmentState.ACCEPTED
    if _wants_json(request):
        if not still_open:  # the script follows the redirect at once: the job list says why
            messages.error(request, message)
        return JsonResponse({"error": message, "redirect": None if still_open else reverse("work-list")}, status=400)
    messages.error(request, message)
    if still_open:
        return redirect("task", assignment_uuid=assignment.uuid)
    return redirect("work-list")


@require_POST
@worker_required
def start_job(request: HttpRequest, worker: Worker, job_id: int) -> HttpResponse:
    job = get_object_or_404(Job, pk=job_id, marketplace=Marketplace.INTERNAL)
    if job.state != JobState.PUBLISHED and not has_worked_on_job(job=job, worker=worker):
        raise Http404("No such job.")  # a draft's or a cancelled job's name is not for workers who never saw it
    return _next_task(request, worker, job)


def _own_assignment(worker: Worker, assignment_uuid: UUID) -> Assignment:
    return get_object_or_404(Assignment.objects.select_related("job"), uuid=assignment_uuid, worker=worker)


@require_GET
@worker_required
def task_page(request: HttpRequest, worker: Worker, assignment_uuid: UUID) -> HttpResponse:
    assignment = _own_assignment(worker, assignment_uuid)
    if assignment.state != AssignmentState.ACCEPTED or assignment.lease_expires_at <= timezone.now():
        messages.info(request, "That task is no longer open for you.")
        return redirect("work-list")
    job = assignment.job
    if job.task_template:
        return layout_task_page(request, worker, assignment)
    items = list_page_items(assignment)
    attach_prelabels(job, items)
    return render(
        request,
        "tasks/task.html",
        {
            "worker": worker,
            "assignment": assignment,
            "job": job,
            "items": items,
            "labels": list(enumerate(job.labels, start=1)),
            "seconds_left": task_for_page(assignment, [])["seconds_left"],
        },
    )


@worker_action("task", key="assignment_uuid")
def submit_task(request: HttpRequest, worker: Worker, assignment_uuid: UUID) -> HttpResponse:
    answers: dict[int, Any] = {}  # by place on the page (``answer-<place>``)
    for key in request.POST:
        place = key[7:]
        if key.startswith("answer-") and place.isascii() and place.isdigit() and len(place) <= 9:
            values = request.POST.getlist(key)
            answers[int(place)] = values[0] if len(values) == 1 else values
    try:
        assignment = submit_assignment(assignment=assignment_uuid, worker=worker, answers=answers, by_place=True)
    except ServiceError as exc:
        return _refused_submit(request, worker, _own_assignment(worker, assignment_uuid), str(exc))
    return _next_task(request, worker, assignment.job, feedback=list_training_feedback(assignment))


def _refused_submit(request: HttpRequest, worker: Worker, assignment: Assignment, message: str) -> HttpResponse:
    """A refused submit (``assignment`` read after the refusal); when the refusal is that this very page was
    already saved (a double click, the back button), the worker moves on."""
    if assignment.state in DONE_ASSIGNMENT_STATES:
        messages.info(request, "Your answers for that task were already saved.")
        return _next_task(request, worker, assignment.job)
    return _refused(request, assignment, message)


@worker_action("task", key="assignment_uuid")
def return_task(request: HttpRequest, worker: Worker, assignment_uuid: UUID) -> HttpResponse:
    assignment = _own_assignment(worker, assignment_uuid)
    try:
        return_assignment(assignment=assignment, worker=worker)
    except ServiceError as exc:
        return _refused(request, assignment, str(exc))
    return _next_task(request, worker, assignment.job)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """``CSRF_FAILURE_VIEW``: a page left open across a sign-in (or a new session) posts a stale token. The
    labeling page's script gets JSON it can show; a plain post gets a page with a way back."""
    message = (
        "This page is out of date (you were signed out or signed in again since it was loaded). "
        "Reload the page and try again."
    )
    if _wants_json(request):
        return JsonResponse({"error": message, "reload": True}, status=403)
    return render(request, "403_csrf.html", {"message": message}, status=403)
