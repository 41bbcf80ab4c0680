"""The ExternalQuestion page MTurk frames for a worker: the only page of the site that may be framed, and
only by MTurk's worker sites (CSP ``frame-ancestors``); every other page keeps ``X-Frame-Options: DENY``."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from tasks.models import Job
from tasks.selectors_mturk import list_mturk_hit_items
from tasks.selectors_predictions import attach_prelabels
from tasks.services.errors import ServiceError, SubmissionRefused
from tasks.services.mturk_common import ITEM_FIELD_PREFIX, PLACE_FIELD_PREFIX
from tasks.services.mturk_task_page import (
    PREVIEW,
    check_ids,
    check_signature,
    mturk_hit,
    sign_ids,
    store_mturk_submission,
    submit_url,
)
from workforce.audit import Actor
from workforce.marketplaces.mturk.config import WORKER_SITES
from workforce.ratelimit import rate_limited

FRAME_POLICY = "frame-ancestors " + " ".join(WORKER_SITES)
PAGE_ACTOR = Actor.system("mturk task page")


def _framed(response: HttpResponse) -> HttpResponse:
    response["Content-Security-Policy"] = FRAME_POLICY
    return response


def _mark_choices(job: Job, items: list[Any], posted: dict[str, Any] | None) -> None:
    """Give each item of a label job the labels its page shows ticked (``item.checked``): those the worker
    posted when a submission is shown again after a refusal (``posted``, the page's own fields, so a worker
    only ever sees their own choices back), else the pre-label. Unknown posted values tick nothing."""
    if job.is_shapes:
        return
    for item in items:
        if posted is None:
            chosen: Any = item.prelabel
        else:
            chosen = posted.get(f"{PLACE_FIELD_PREFIX}{item.place}", [])
        values = {str(v) for v in chosen} if isinstance(chosen, list) else {str(chosen)} if chosen else set()
        if not job.is_multilabel and len(values) > 1:
            values = set()  # one radio at most
        item.checked = [label for label in job.labels if str(label) in values]


def _page(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    return _framed(render(request, "tasks/mturk/task.html", context, status=status))


# Posted from inside MTurk's frame, where our CSRF cookie is third-party: the form carries a signature of the
# ids it was shown for instead. That only ties a post to a page this site rendered; the ids themselves come
# from the query string, so a post is stored as a claim and counts once MTurk lists the assignment.
@csrf_exempt
@xframe_options_exempt
@require_http_methods(["GET", "POST"])
@rate_limited(
    "mturk-page",
    limit_setting="MTURK_PAGE_RATE_LIMIT",
    window_setting="MTURK_PAGE_RATE_WINDOW_SECONDS",
    methods=("POST",),
)
def mturk_task(request: HttpRequest) -> HttpResponse:
    params = request.POST if request.method == "POST" else request.GET
    ids = {k: params.get(k, "") for k in ("assignmentId", "hitId", "workerId", "turkSubmitTo")}
    try:
        check_ids(assignment_id=ids["assignmentId"], hit_id=ids["hitId"], worker_id=ids["workerId"])
        hit = mturk_hit(ids["hitId"])
        action = submit_url(ids["turkSubmitTo"]) if ids["assignmentId"] != PREVIEW else ""
        if request.method == "POST":
            check_signature(
                request.POST.get("signature", ""),
                assignment_id=ids["assignmentId"],
                hit_id=ids["hitId"],
                worker_id=ids["workerId"],
            )
    except ServiceError as error:
        return _page(request, {"error": str(error)}, status=400)
    job = hit.job
    context: dict[str, Any] = {
        "job": job,
        "items": list_mturk_hit_items(hit.pk),
        "labels": list(enumerate(job.labels, start=1)) if job.is_shapes else list(job.labels),
        "ids": ids,
        "preview": ids["assignmentId"] == PREVIEW,
        "prefix": PLACE_FIELD_PREFIX,
        "signature": sign_ids(assignment_id=ids["assignmentId"], hit_id=ids["hitId"], worker_id=ids["workerId"]),
    }
    if request.method == "GET" or context["preview"]:
        attach_prelabels(job, context["items"])
        _mark_choices(job, context["items"], None)
        return _page(request, context)
    fields: dict[str, Any] = {}
    for key in request.POST:
        if key.startswith((PLACE_FIELD_PREFIX, ITEM_FIELD_PREFIX)):
            values = request.POST.getlist(key)
            fields[key] = values if job.is_multilabel else values[0]
    try:
        answers = store_mturk_submission(
            hit=hit, assignment_id=ids["assignmentId"], worker_id=ids["workerId"], fields=fields, actor=PAGE_ACTOR
        )
    except SubmissionRefused as error:
        # what the worker chose goes back on the page (drawings to the editor), to fix what was refused only
        for item in context["items"]:
            item.drawing = fields.get(f"{PLACE_FIELD_PREFIX}{item.place}", "")
        attach_prelabels(job, context["items"])
        _mark_choices(job, context["items"], fields)
        return _page(request, {**context, "error": str(error)}, status=400)
    place = {item.external_id: item.place for item in context["items"]}
    forward = {  # MTurk keeps the answers under the page's own names (the collect path maps them back)
        f"{PLACE_FIELD_PREFIX}{place[item]}": value if isinstance(value, str) else json.dumps(value)
        for item, value in answers.items()
    }
    return _framed(
        render(
            request,
            "tasks/mturk/forward.html",
            {"action": action, "assignment_id": ids["assignmentId"], "fields": sorted(forward.items())},
        )
    )
