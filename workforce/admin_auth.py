"""Who may do what, audited: Django's user and group admins and DRF's token admin, re-registered so every
change to a user's flags, roles or permissions, to a role's permissions, to a password or an API token goes
through the audited services of ``workforce.services`` (the pages look and behave as before). A staff user's
own "Change password" page (``admin:password_change``) is audited by ``audited_password_change``, which
``config.urls`` serves at that page's address.

Imported by ``workforce.admin``; ``django.contrib.auth`` and ``rest_framework.authtoken`` come before
``workforce`` in INSTALLED_APPS, so their admins are registered by then and are replaced here.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin, sensitive_post_parameters_m
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.views.decorators.debug import sensitive_post_parameters
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from workforce.audit import Actor
from workforce.services import (
    auditing_password_change,
    delete_api_tokens,
    delete_groups,
    delete_users,
    get_group_access,
    get_user_access,
    record_group_saved,
    record_user_saved,
    save_api_token,
)

User = get_user_model()

# The "before" of an edit is read from the database in save_model (validating the form has already written
# the new values into the object) and kept on the object until save_related has saved the m2m rows.
_BEFORE = "_audit_access_before"


class AuditedUserAdmin(UserAdmin):
    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        setattr(obj, _BEFORE, get_user_access(user_id=obj.pk, lock=True) if change else None)
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        record_user_saved(
            user=form.instance,
            actor=Actor.from_user(request.user),
            created=not change,
            before=getattr(form.instance, _BEFORE, None),
            changed_fields=form.changed_data,
        )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        delete_users(users=[obj], actor=Actor.from_user(request.user))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        delete_users(users=queryset, actor=Actor.from_user(request.user))

    @sensitive_post_parameters_m
    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        user = self.get_object(request, unquote(id)) if request.method == "POST" else None
        if user is None:  # a GET, or no such user (Django answers 404)
            return super().user_change_password(request, id, form_url)
        with auditing_password_change(user=user, actor=Actor.from_user(request.user)):
            return super().user_change_password(request, id, form_url)


class AuditedGroupAdmin(GroupAdmin):
    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        setattr(obj, _BEFORE, get_group_access(group_id=obj.pk, lock=True) if change else None)
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        record_group_saved(
            group=form.instance,
            actor=Actor.from_user(request.user),
            created=not change,
            before=getattr(form.instance, _BEFORE, None),
        )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        delete_groups(groups=[obj], actor=Actor.from_user(request.user))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        delete_groups(groups=queryset, actor=Actor.from_user(request.user))


class AuditedTokenAdmin(TokenAdmin):
    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        save_api_token(token=obj, actor=Actor.from_user(request.user))

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        delete_api_tokens(tokens=[obj], actor=Actor.from_user(request.user))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        delete_api_tokens(tokens=queryset, actor=Actor.from_user(request.user))


@sensitive_post_parameters()
def audited_password_change(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
    """The admin site's own "Change password" page for the signed-in staff user, audited as the user admin's
    password change is: an event says the password changed (never the value or its hash). Wrap it in
    ``admin.site.admin_view`` (staff only, CSRF-protected), as the admin wraps its own view."""
    if request.method != "POST":
        return admin.site.password_change(request, extra_context)
    with auditing_password_change(user=request.user, actor=Actor.from_user(request.user)):
        return admin.site.password_change(request, extra_context)


for _model, _admin_class in ((User, AuditedUserAdmin), (Group, AuditedGroupAdmin), (TokenProxy, AuditedTokenAdmin)):
    admin.site.unregister(_model)
    admin.site.register(_model, _admin_class)
