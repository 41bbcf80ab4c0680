"""The public join page, ``/join/<token>/``: an invitation link becomes a pool worker's account.

Thin: parse the form, call ``workforce.invitations``, render. A link that cannot be used answers 404
(unknown) or 410 (expired, used, withdrawn) with the same words, so the page tells nothing more.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from workforce import ratelimit
from workforce.invitations import (
    ACCOUNT,
    UNKNOWN,
    InvitationError,
    accept_invitation,
    get_open_invitation,
    join_with_new_account,
    joiner_actor,
)
from workforce.models import Invitation

DEFAULT_RATE_LIMIT = 10  # POSTs per client address (and user) per window; settings.WORKER_JOIN_RATE_LIMIT
DEFAULT_RATE_WINDOW_SECONDS = 600  # settings.WORKER_JOIN_RATE_WINDOW_SECONDS
GONE = (
    "This invitation link cannot be used: it may have expired, been used already or been withdrawn. "
    "Ask whoever sent it to you for a new one."
)
WELCOME = "Welcome to the worker pool. Here is the work open to you."


class JoinForm(UserCreationForm):
    """User name (free, case-insensitively), password twice (Django's password validators)."""


@never_cache
@require_http_methods(["GET", "POST"])
def join(request: HttpRequest, token: str) -> HttpResponse:
    if request.method == "POST" and _too_many_posts(request):
        message = "Too many attempts in a short time. Wait a few minutes and try again."
        response = render(request, "forbidden.html", {"message": message}, status=429)
        response["Retry-After"] = str(_rate_window())
        return response
    try:
        invitation = get_open_invitation(token=token)
    except InvitationError as exc:
        return _gone(request, exc)
    if request.user.is_authenticated:
        return _join_signed_in(request, token, invitation)
    form = JoinForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            worker = join_with_new_account(
                token=token, username=form.cleaned_data["username"], password=form.cleaned_data["password1"]
            )
        except InvitationError as exc:
            if exc.code != ACCOUNT:
                return _gone(request, exc)
            form.add_error(None, str(exc))
        else:
            login(request, worker.user, backend=settings.AUTHENTICATION_BACKENDS[0])
            messages.success(request, WELCOME)
            return redirect("work-list")
    return _page(request, invitation, form=form)


def _join_signed_in(request: HttpRequest, token: str, invitation: Invitation) -> HttpResponse:
    """A signed-in user accepts with their own account, when it may join (not staff, not a worker yet)."""
    user: Any = request.user
    refusal = _why_not(user)
    if request.method == "POST" and not refusal:
        try:
            accept_invitation(token=token, user=user, actor=joiner_actor(user))
        except InvitationError as exc:
            if exc.code != ACCOUNT:
                return _gone(request, exc)
            refusal = str(exc)
        else:
            messages.success(request, WELCOME)
            return redirect("work-list")
    return _page(request, invitation, refusal=refusal)


def _why_not(user: Any) -> str:
    """Why this account cannot accept, or "" (the service checks again under a lock)."""
    if user.is_staff or user.is_superuser:
        return (
            "Staff accounts cannot join the worker pool. Log out, then open this link again to join with a new account."
        )
    try:
        user.worker  # noqa: B018  (a query unless the backend joined it)
    except ObjectDoesNotExist:
        return ""
    return "Your account already works in the pool. Log out to join with another account."


def _page(
    request: HttpRequest, invitation: Invitation, *, form: JoinForm | None = None, refusal: str = ""
) -> HttpResponse:
    context = {"form": form, "refusal": refusal, "keeps_history": invitation.worker_id is not None}
    return render(request, "workforce/join.html", context)


def _gone(request: HttpRequest, exc: InvitationError) -> HttpResponse:
    status = 404 if exc.code == UNKNOWN else 410
    return render(request, "workforce/join_gone.html", {"message": GONE}, status=status)


def _rate_window() -> int:
    return int(getattr(settings, "WORKER_JOIN_RATE_WINDOW_SECONDS", DEFAULT_RATE_WINDOW_SECONDS))


def _too_many_posts(request: HttpRequest) -> bool:
    limit = int(getattr(settings, "WORKER_JOIN_RATE_LIMIT", DEFAULT_RATE_LIMIT))
    user = str(request.user.pk) if request.user.is_authenticated else ""
    return ratelimit.hit("join", user, ratelimit.client_ip(request), window=_rate_window()) > limit
