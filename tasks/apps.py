from __future__ import annotations

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Labeling jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib import admin

        from tasks.roles import ensure_roles

        post_migrate.connect(ensure_roles, sender=self, dispatch_uid="tasks.ensure_roles")
        # The admin's front page: the reports a role may read above the models (``admin/crowd_index.html``).
        admin.site.index_template = "admin/crowd_index.html"
        admin.site.site_header = "CrowdOps administration"
        admin.site.site_title = "CrowdOps"
