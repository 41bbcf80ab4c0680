"""python manage.py demo: accounts and two published demo jobs, with logins printed."""

from __future__ import annotations

import io
import json
import secrets
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from tasks.demo_data import review_items, shape_items
from tasks.demo_history import create_demo_qualification_test, create_worked_demo_job
from tasks.models import Job, JobState, TaskKind
from tasks.roles import CROWD_WORKER, FINANCE, OPS_MANAGER, REVIEWER
from tasks.services.imports import import_items
from tasks.services.jobs import create_job
from tasks.services.publishing import publish_job
from workforce.audit import Actor
from workforce.services import auditing_password_change, get_user_access, record_user_saved, register_internal_worker

ACTOR = Actor.system("demo command")

DEMO_JOBS: list[dict[str, Any]] = [
    {
        "name": "Demo: which shape is in the picture?",
        "task_kind": TaskKind.IMAGE_CLASSIFICATION,
        "labels": ["circle", "square", "triangle"],
        "description": "Look at a small picture and pick the shape you see.",
        "instructions": "Pick the one shape in the picture. Ignore the small grey dots: they are noise.",
        "items": lambda: shape_items(60),
        "reward": Decimal("0.02"),
    },
    {
        "name": "Demo: is this product review positive or negative?",
        "task_kind": TaskKind.TEXT_CLASSIFICATION,
        "labels": ["positive", "negative", "neutral"],
        "description": "Read a one-line product review and judge its tone.",
        "instructions": "Choose positive if the writer is happy with the product, negative if unhappy, "
        "neutral if the review does not say.",
        "items": lambda: review_items(60),
        "reward": Decimal("0.01"),
    },
]


class Command(BaseCommand):
    help = "Create demo accounts (printing their logins) and two published demo jobs. Safe to run again."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workers", type=int, default=3)
        parser.add_argument(
            "--no-worked-job",
            dest="worked_job",
            action="store_false",
            help="skip the demo job that a simulated crowd has already worked (its dashboards have figures)",
        )
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000", help="where the server will listen, for the printed login link"
        )

    def _account(self, username: str, *, staff: bool, group: str) -> tuple[Any, str]:
        """The account, created or brought back to its demo role with a new password, audited as the admin's
        forms audit it: ``user.created``, or ``user.password_changed`` and (if its access changed) ``user.changed``."""
        users = get_user_model()._default_manager
        password = secrets.token_urlsafe(9)
        user = users.select_for_update().filter(username=username).first()
        before = None if user is None else get_user_access(user_id=user.pk, lock=True)
        if user is None:
            user = users.create_user(username=username, password=password, is_staff=staff)
        else:
            with auditing_password_change(user=user, actor=ACTOR):
                user.is_staff = staff
                user.set_password(password)
                user.save()
        user.groups.add(Group.objects.get(name=group))
        record_user_saved(user=user, actor=ACTOR, created=before is None, before=before)
        return user, password

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        logins: list[tuple[str, str, str]] = []
        ops, password = self._account("ops", staff=True, group=OPS_MANAGER)
        logins.append(("ops manager (admin)", "ops", password))
        for username, group in (("finance", FINANCE), ("reviewer", REVIEWER)):  # they see only their part of the admin
            _user, password = self._account(username, staff=True, group=group)
            logins.append((f"{group.lower().rstrip('s')} (admin)", username, password))
        for i in range(1, options["workers"] + 1):
            user, password = self._account(f"worker{i}", staff=False, group=CROWD_WORKER)
            register_internal_worker(user=user, actor=ACTOR)
            logins.append(("crowd worker", user.username, password))
        for spec in DEMO_JOBS:
            job = Job.objects.filter(name=spec["name"]).first()
            if job is None:
                job = create_job(
                    name=spec["name"],
                    task_kind=spec["task_kind"],
                    labels=spec["labels"],
                    description=spec["description"],
                    instructions=spec["instructions"],
                    reward=spec["reward"],
                    redundancy=3,
                    actor=ACTOR,
                    created_by=ops,
                )
            rows = "\n".join(json.dumps(item) for item in spec["items"]())
            import_items(job=job, stream=io.StringIO(rows), filename="demo.jsonl", actor=ACTOR)
            if job.state == JobState.DRAFT:
                publish_job(job=job, actor=ACTOR)
        create_demo_qualification_test(actor=ACTOR, created_by=ops)
        if options["worked_job"]:
            create_worked_demo_job(actor=ACTOR, created_by=ops)
        login_url = options["url"].rstrip("/") + "/accounts/login/"
        self.stdout.write(self.style.SUCCESS(f"Demo data ready. Log in at {login_url}"))
        for role, username, password in logins:
            self.stdout.write(f"  {role:<20} username: {username:<10} password: {password}")
        self.stdout.write(
            "Ops managers, finance and reviewers land in the admin (/admin/); crowd workers on their work list "
            "(/work/)."
        )
