"""Django's ``changepassword``, audited: a changed password records ``user.password_changed`` (that it changed
and whether it is usable, never the value or its hash), by the command and the OS user running it.

Same arguments, prompts, checks and messages as ``django.contrib.auth``'s command, which it subclasses. It runs
instead of Django's only when ``workforce`` comes before ``django.contrib.auth`` in ``INSTALLED_APPS``
(Django gives a command name to the earliest app that has it).

The password is typed (and checked) first, with no transaction open, so nobody waits for the operator's
typing; then the change and its event commit together in one short transaction (``auditing_password_change``,
as in the admin), which writes the password only, not the rest of a user row read before the prompts. A
refused or abandoned change writes nothing.
"""

from __future__ import annotations

import getpass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.management.commands import changepassword
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from workforce.management.commands._actor import command_actor
from workforce.services import auditing_password_change

MAX_TRIES = 3  # Django's


class Command(changepassword.Command):
    def handle(self, *args: Any, **options: Any) -> str:
        user_model = get_user_model()
        username = options["username"] or getpass.getuser()
        users = user_model._default_manager.using(options["database"])
        try:
            user = users.get(**{user_model.USERNAME_FIELD: username})
        except user_model.DoesNotExist:
            raise CommandError(f"user '{username}' does not exist") from None
        self.stdout.write(f"Changing password for user '{user}'")
        password = self._typed_password(user)
        try:
            with auditing_password_change(user=user, actor=command_actor("changepassword")):
                user.set_password(password)
                user.save(update_fields=["password"])
        except user_model.DoesNotExist:  # deleted while the password was typed
            raise CommandError(f"user '{username}' does not exist") from None
        return f"Password changed successfully for user '{user}'"

    def _typed_password(self, user: Any) -> str:
        """The new password, typed twice and validated, as Django's command asks for it (three tries)."""
        for _ in range(MAX_TRIES):
            first = self._ask("Password: ")
            second = self._ask("Password (again): ")
            if first != second:
                self.stdout.write("Passwords do not match. Please try again.")
                continue  # passwords that do not match are not validated
            try:
                validate_password(second, user)
            except ValidationError as err:
                self.stderr.write("\n".join(err.messages))
            else:
                return first
        raise CommandError(f"Aborting password change for user '{user}' after {MAX_TRIES} attempts")

    def _ask(self, prompt: str) -> str:
        typed = getpass.getpass(prompt=prompt)
        if not typed:
            raise CommandError("aborted")
        return typed
