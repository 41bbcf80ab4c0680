"""The worker's own scores page (internal pool). Thin: one selector, one template."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from tasks.worker_scores import SCORE_BLOCK, list_worker_scorecards
from workforce.models import Worker
from workforce.web import worker_required


@require_GET
@worker_required
def my_scores(request: HttpRequest, worker: Worker) -> HttpResponse:
    return render(
        request,
        "tasks/my_scores.html",
        {"worker": worker, "cards": list_worker_scorecards(worker), "update_every": SCORE_BLOCK},
    )
