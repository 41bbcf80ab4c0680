"""Web helpers shared by the crowd worker pages of every app."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.views.decorators.http import require_http_methods

from workforce.models import Worker

View = Callable[..., HttpResponse]


def is_pool_worker(user: Any, worker: Worker | None) -> bool:
    """Whether ``worker`` works in the internal pool as ``user``: a worker row linked to this account. That is
    an internal-pool worker (``register_internal_worker``) or an imported one, e.g. from MTurk, whose row an
    accepted invitation linked to the account (``workforce.invitations``); no other path gives a worker a user.
    A blocked worker still is one: the pool refuses them new work (``tasks.services.pool``)."""
    return worker is not None and user is not None and user.pk is not None and worker.user_id == user.pk


def worker_required(view: View) -> View:
    """Only signed-in pool workers (``is_pool_worker``) may use the page; the view gets the worker as its 2nd
    argument."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            worker = request.user.worker  # type: ignore[union-attr]
        except ObjectDoesNotExist:
            worker = None
        if not is_pool_worker(request.user, worker):
            return HttpResponseForbidden(
                render_to_string("forbidden.html", {"message": "This page is for crowd workers."}, request)
            )
        return view(request, worker, *args, **kwargs)

    return wrapper


def worker_action(back_to: str, *, key: str) -> Callable[[View], View]:
    """A crowd worker's POST action (``worker_required``). Reached by GET, as the login page's ``next`` does
    after the session ended mid-task, it sends the worker back to the ``back_to`` page for the same ``key``
    URL argument (that page checks the object is theirs) instead of answering 405."""

    def decorate(view: View) -> View:
        @require_http_methods(["GET", "POST"])
        @worker_required
        @wraps(view)
        def wrapper(request: HttpRequest, worker: Any, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method == "GET":
                return redirect(back_to, **{key: kwargs[key]})
            return view(request, worker, *args, **kwargs)

        return wrapper

    return decorate
