from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class WorkforceConfig(AppConfig):
    name = "workforce"
    verbose_name = "Workforce"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from workforce import signals  # noqa: F401  (connects the login audit receivers)
        from workforce.marketplaces.groundtruth.config import check_groundtruth_settings

        checks.register(check_groundtruth_settings, checks.Tags.compatibility)
        from workforce.marketplaces.mturk.checks import fail_if_misconfigured

        fail_if_misconfigured()
