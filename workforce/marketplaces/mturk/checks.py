"""Start-up check: MTurk enabled but unconfigured is an error that stops ``runserver``, ``migrate`` and
the Celery worker (``manage.py check`` runs it too)."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, register

from workforce.marketplaces.base import MarketplaceNotConfigured
from workforce.marketplaces.mturk.config import MTurkSettings


def mturk_problems(config: MTurkSettings) -> list[str]:
    if not config.enabled:
        return []
    from workforce.marketplaces.mturk.client import check_credentials

    problems = []
    try:
        check_credentials(config)
    except MarketplaceNotConfigured as exc:
        problems.append(str(exc))
    if not config.external_question_base_url.startswith("https://"):
        problems.append(
            "MTURK_EXTERNAL_QUESTION_BASE_URL must be this site's public https address (MTurk frames the task page)."
        )
    if config.requests_per_second <= 0:
        problems.append("MTURK_REQUESTS_PER_SECOND must be positive.")
    return problems


@register()
def check_mturk(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return [Error(problem, id="crowdops.E501") for problem in mturk_problems(MTurkSettings.from_django())]


def fail_if_misconfigured() -> None:
    """Called from ``WorkforceConfig.ready``: every process (web, Celery) refuses to start half-configured."""
    from django.core.exceptions import ImproperlyConfigured

    problems = mturk_problems(MTurkSettings.from_django())
    if problems:
        raise ImproperlyConfigured("MTurk is enabled but not configured: " + " ".join(problems))
