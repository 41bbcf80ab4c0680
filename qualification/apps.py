from __future__ import annotations

from django.apps import AppConfig


class QualificationConfig(AppConfig):
    name = "qualification"
    verbose_name = "Qualification and gold"
    default_auto_field = "django.db.models.BigAutoField"
