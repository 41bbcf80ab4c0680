"""Django's ``createsuperuser``, audited: the new user is recorded as ``user.created`` with what it may do
(``is_staff``, ``is_superuser``, groups, permissions, whether its password is usable), never the password,
by the command and the OS user running it. At a terminal and with ``--noinput`` (the password from
``DJANGO_SUPERUSER_PASSWORD``, or none) alike.

Same arguments, prompts, checks and messages as ``django.contrib.auth``'s command, which it subclasses. It runs
instead of Django's only when ``workforce`` comes before ``django.contrib.auth`` in ``INSTALLED_APPS``
(Django gives a command name to the earliest app that has it).

The user and its event commit together: the command runs in one transaction, and the user it creates is
caught by a ``post_save`` receiver connected only while it runs. A refused or cancelled creation writes
nothing.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.management.commands import createsuperuser
from django.db import transaction
from django.db.models.signals import post_save

from workforce.management.commands._actor import command_actor
from workforce.services import record_user_saved


class Command(createsuperuser.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        new_users: list[Any] = []

        def caught(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
            if created:
                new_users.append(instance)

        uid = f"workforce.createsuperuser.{id(self)}"
        post_save.connect(caught, sender=self.UserModel, weak=False, dispatch_uid=uid)
        try:
            with transaction.atomic(using=options["database"]):
                super().handle(*args, **options)
                post_save.disconnect(sender=self.UserModel, dispatch_uid=uid)
                actor = command_actor("createsuperuser")
                for user in new_users:
                    record_user_saved(user=user, actor=actor, created=True, before=None)
        finally:
            post_save.disconnect(sender=self.UserModel, dispatch_uid=uid)
