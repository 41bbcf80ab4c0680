"""The worker's qualification pages: test list, start, test page, submit, result. Thin: parse, call, render."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from qualification.errors import AttemptRefused
from qualification.models import Attempt, AttemptState, QualificationTest
from qualification.selectors import get_worker_attempt, list_tests_for_worker, questions_for_page
from qualification.services import start_attempt, submit_attempt
from workforce.models import Worker
from workforce.ratelimit import rate_limited
from workforce.web import worker_action, worker_required

ANSWER_PREFIX = "q-"
# Starting and submitting attempts: at most QUALIFICATION_RATE_LIMIT per worker and IP per window.
_rate_limited = rate_limited(
    "qualification",
    limit_setting="QUALIFICATION_RATE_LIMIT",
    window_setting="QUALIFICATION_RATE_WINDOW_SECONDS",
    methods=("POST",),
)


def _own_attempt(worker: Worker, attempt_uuid: UUID) -> Attempt:
    attempt = get_worker_attempt(worker, attempt_uuid)
    if attempt is None:
        raise Http404("No such attempt.")
    return attempt


@require_GET
@worker_required
def test_list(request: HttpRequest, worker: Worker) -> HttpResponse:
    return render(request, "qualification/test_list.html", {"worker": worker, "cards": list_tests_for_worker(worker)})


@require_POST
@worker_required
@_rate_limited
def start(request: HttpRequest, worker: Worker, test_id: int) -> HttpResponse:
    test = get_object_or_404(QualificationTest, pk=test_id)
    try:
        attempt = start_attempt(test=test, worker=worker)
    except AttemptRefused as exc:
        messages.error(request, str(exc))
        return redirect("qualification:list")
    return redirect("qualification:attempt", attempt_uuid=attempt.uuid)


@require_GET
@never_cache  # "no-store": Back after submitting asks the server again (the result), not a live copy of the test
@worker_required
def attempt_page(request: HttpRequest, worker: Worker, attempt_uuid: UUID) -> HttpResponse:
    attempt = _own_attempt(worker, attempt_uuid)
    seconds_left = int((attempt.deadline - timezone.now()).total_seconds())
    if attempt.state != AttemptState.OPEN or seconds_left <= 0:
        return redirect("qualification:result", attempt_uuid=attempt.uuid)
    return render(
        request,
        "qualification/attempt.html",
        {
            "worker": worker,
            "attempt": attempt,
            "test": attempt.test,
            "questions": questions_for_page(attempt.test),
            "seconds_left": seconds_left,
        },
    )


@worker_action("qualification:attempt", key="attempt_uuid")
@_rate_limited
def submit(request: HttpRequest, worker: Worker, attempt_uuid: UUID) -> HttpResponse:
    attempt = _own_attempt(worker, attempt_uuid)
    answers: dict[str, Any] = {}
    for key in request.POST:
        if key.startswith(ANSWER_PREFIX):
            values = request.POST.getlist(key)
            answers[key[len(ANSWER_PREFIX) :]] = values[0] if len(values) == 1 else values
    try:
        submit_attempt(attempt=attempt, worker=worker, answers=answers)
    except AttemptRefused as exc:
        attempt.refresh_from_db(fields=["state"])
        if attempt.state != AttemptState.EXPIRED:  # the result page itself says that time ran out
            messages.error(request, str(exc))
    return redirect("qualification:result", attempt_uuid=attempt.uuid)


@require_GET
@worker_required
def result(request: HttpRequest, worker: Worker, attempt_uuid: UUID) -> HttpResponse:
    attempt = _own_attempt(worker, attempt_uuid)
    card = next((c for c in list_tests_for_worker(worker) if c.test.pk == attempt.test_id), None)
    return render(
        request,
        "qualification/result.html",
        {
            "worker": worker,
            "attempt": attempt,
            "test": attempt.test,
            "card": card,
            "time_ran_out": attempt.state == AttemptState.EXPIRED
            or (attempt.state == AttemptState.OPEN and attempt.deadline <= timezone.now()),
        },
    )
