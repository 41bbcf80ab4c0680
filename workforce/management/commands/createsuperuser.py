"""Django's ``createsuperuser``, audited: the new user is recorded as ``user.created`` with what it may do
(``is_staff``, ``is_superuser``, groups, permissions, whether its password is usable), never the password,
by the command and the OS user running it. At a terminal and with ``--noinput`` (the password from
``DJANGO_SUPERUSER_PASSWORD``, or none) alike.

Same arguments, prompts, checks and messages as ``django.contrib.auth``'s command, which it subclasses. It runs
instead of Django's only when ``workforce`` comes before ``django.contrib.auth`` in ``INSTALLED_APPS``
(Django gives a command name to the earliest app that has it).

Django's command asks for everything first, with no transaction open (nobody waits for the operator's
typing), and then makes one write, ``create_superuser``: that call is caught here (``_UserModel``) and runs
with the new user's event in one short transaction, so the two commit together. A refused or cancelled
creation writes nothing.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.management.commands import createsuperuser
from django.db import transaction

from workforce.audit import Actor
from workforce.management.commands._actor import command_actor
from workforce.services import record_user_saved


class _Manager:
    """The user model's manager, except that ``create_superuser`` commits the user with its audit event."""

    def __init__(self, manager: Any, actor: Actor) -> None:
        self._manager = manager
        self._actor = actor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)

    def db_manager(self, using: str | None = None, hints: dict[str, Any] | None = None) -> _Manager:
        return _Manager(self._manager.db_manager(using, hints), self._actor)

    def create_superuser(self, *args: Any, **fields: Any) -> Any:
        with transaction.atomic(using=self._manager.db):
            user = self._manager.create_superuser(*args, **fields)
            record_user_saved(user=user, actor=self._actor, created=True, before=None)
        return user


class _UserModel:
    """The user model as Django's command uses it (fields, validation, lookups), but for its one write."""

    def __init__(self, model: Any, actor: Actor) -> None:
        self._model = model
        self._actor = actor

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._model(*args, **kwargs)

    @property
    def _default_manager(self) -> _Manager:
        return _Manager(self._model._default_manager, self._actor)


class Command(createsuperuser.Command):
    def handle(self, *args: Any, **options: Any) -> None:
        model = self.UserModel
        self.UserModel = _UserModel(model, command_actor("createsuperuser"))  # type: ignore[assignment]
        try:
            super().handle(*args, **options)
        finally:
            self.UserModel = model
