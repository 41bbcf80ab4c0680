"""The roles (Django groups) and the model permissions each one holds.

Groups are kept in step with this table after every ``migrate`` (see ``TasksConfig.ready``).
"""

from __future__ import annotations

from typing import Any

OPS_MANAGER = "Ops managers"
REVIEWER = "Reviewers"
FINANCE = "Finance"
CROWD_WORKER = "Crowd workers"

# group -> app_label -> {model: actions}; an action with an underscore is a custom permission's codename
ROLE_PERMISSIONS: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    OPS_MANAGER: {
        "tasks": {
            "job": ("add", "change", "view"),
            "item": ("add", "change", "view"),
            "hit": ("view",),
            "assignment": ("view",),
            "answer": ("view",),
            "consensuslabel": ("view",),
            "workerjobscore": ("view",),
            "jobblock": ("view", "change"),
            "assignmentflag": ("view",),
            "prediction": ("add", "view"),
            "mturkpagesubmission": ("view",),
            "mturkbonus": ("view", "change"),
            "labelingjob": ("add", "view", "change"),
            "groundtruthlabel": ("view",),
            "costentry": ("view",),
            "datasetversion": ("add", "view"),
            "labelexport": ("add", "view"),
            "jobinstructions": ("view",),
            "budgetreservation": ("view",),
            "budgetalert": ("view",),
            "monthlybudget": ("add", "change", "view"),
        },
        "workforce": {
            "worker": ("view", "change", "view_worker_identity"),
            "auditevent": ("view",),
            "invitation": ("add", "view", "change"),
        },
        "qualification": {
            "qualificationtest": ("add", "change", "view"),
            "question": ("add", "change", "view", "delete"),
            "attempt": ("view",),
            "grant": ("view", "change"),
        },
    },
    REVIEWER: {
        "tasks": {
            "job": ("view",),
            "item": ("view",),
            "hit": ("view",),
            "assignment": ("view", "change"),
            "answer": ("view",),
            "consensuslabel": ("view",),
            "workerjobscore": ("view",),
            "datasetversion": ("view",),
            "assignmentflag": ("view",),
        },
        "workforce": {"worker": ("view",)},
    },
    # Finance reads every report and the ledger, and changes nothing.
    FINANCE: {
        "tasks": {
            "job": ("view",),
            "assignment": ("view",),
            "costentry": ("view",),
            "budgetreservation": ("view",),
            "budgetalert": ("view",),
            "monthlybudget": ("view",),
        },
        "workforce": {"auditevent": ("view",), "worker": ("view", "view_worker_identity")},
    },
    CROWD_WORKER: {},
}


def ensure_roles(**_: Any) -> None:
    from django.contrib.auth.models import Group, Permission

    for group_name, apps in ROLE_PERMISSIONS.items():
        group, _created = Group.objects.get_or_create(name=group_name)
        wanted = [
            (app_label, action if "_" in action else f"{action}_{model}")  # custom permissions by codename
            for app_label, models in apps.items()
            for model, actions in models.items()
            for action in actions
        ]
        perms = [
            p
            for p in Permission.objects.filter(content_type__app_label__in=list(apps)).select_related("content_type")
            if (p.content_type.app_label, p.codename) in wanted
        ]
        group.permissions.set(perms)
