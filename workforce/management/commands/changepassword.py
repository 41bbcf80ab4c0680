"""Django's ``changepassword``, audited: a changed password records ``user.password_changed`` (that it changed
and whether it is usable, never the value or its hash), by the command and the OS user running it.

Same arguments, prompts, checks and messages as ``django.contrib.auth``'s command, which it subclasses. It runs
instead of Django's only when ``workforce`` comes before ``django.contrib.auth`` in ``INSTALLED_APPS``
(Django gives a command name to the earliest app that has it).

The user's row is locked and the change and its event commit together (``auditing_password_change``, as in
the admin), so the transaction stays open while the password is typed; a refused or abandoned change
writes nothing.
"""

from __future__ import annotations

import getpass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.management.commands import changepassword

from workforce.management.commands._actor import command_actor
from workforce.services import auditing_password_change


class Command(changepassword.Command):
    def handle(self, *args: Any, **options: Any) -> str:
        user_model = get_user_model()
        username = options["username"] or getpass.getuser()  # the user Django's command will change
        user = (
            user_model._default_manager.using(options["database"])
            .filter(**{user_model.USERNAME_FIELD: username})
            .first()
        )
        if user is None:
            return str(super().handle(*args, **options))  # Django's own "user ... does not exist"
        with auditing_password_change(user=user, actor=command_actor("changepassword")):
            return str(super().handle(*args, **options))
