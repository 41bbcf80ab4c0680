"""A Content-Security-Policy header on every response (Django 5.2 has none built in).

Item data and instructions are escaped wherever they are rendered; the policy is the second line: even an
escaping mistake could not run an inline or third-party script. ``CONTENT_SECURITY_POLICY=""`` turns it off.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = settings.CONTENT_SECURITY_POLICY
        if policy and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = policy
        return response
