"""Web helpers shared by the crowd worker pages of every app."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.template.loader import render_to_string

from workforce.models import Marketplace

View = Callable[..., HttpResponse]


def worker_required(view: View) -> View:
    """Only signed-in internal-pool workers may use the page; the view gets the worker as its 2nd argument."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            worker = request.user.worker  # type: ignore[union-attr]
        except ObjectDoesNotExist:
            worker = None
        if worker is None or worker.marketplace != Marketplace.INTERNAL:
            return HttpResponseForbidden(
                render_to_string("forbidden.html", {"message": "This page is for crowd workers."}, request)
            )
        return view(request, worker, *args, **kwargs)

    return wrapper
