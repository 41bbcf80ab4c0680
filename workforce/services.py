"""Workforce writes: registering and editing workers, erasing their personal data on request; and who may
do what (users, roles, API tokens), audited with their before and after."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import is_password_usable
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import QuerySet
from rest_framework.authtoken.models import Token

from workforce.audit import Actor, QueuedEvent, record_audit_event, record_audit_events
from workforce.models import AuditEvent, Marketplace, Worker
from workforce.privacy import mask_worker_id


def register_internal_worker(*, user: Any, actor: Actor, display_name: str = "") -> Worker:
    """Give a Django user a worker identity in the internal pool (idempotent)."""
    with transaction.atomic():
        worker, created = Worker.objects.get_or_create(
            marketplace=Marketplace.INTERNAL,
            external_id=f"user-{user.pk}",
            defaults={"user": user, "display_name": display_name or user.get_username()},
        )
        if created:
            record_audit_event(
                actor=actor,
                action="worker.registered",
                object_type="worker",
                object_id=worker.pk,
                after={"marketplace": worker.marketplace, "external_id": worker.external_id},
            )
    return worker


def get_or_create_workers(*, marketplace: str, external_ids: list[str]) -> dict[str, Worker]:
    """Workers by external id, creating the missing ones in bulk (marketplace imports, simulator)."""
    with transaction.atomic():
        existing = {
            w.external_id: w for w in Worker.objects.filter(marketplace=marketplace, external_id__in=external_ids)
        }
        missing = [eid for eid in dict.fromkeys(external_ids) if eid not in existing]
        if missing:
            Worker.objects.bulk_create(
                # No display name: the marketplace id is personal data and must not show wherever a worker does.
                [Worker(marketplace=marketplace, external_id=eid) for eid in missing],
                ignore_conflicts=True,
            )
            existing = {
                w.external_id: w for w in Worker.objects.filter(marketplace=marketplace, external_id__in=external_ids)
            }
    return existing


def pseudonymise_worker(*, worker: Worker, actor: Actor, reason: str = "") -> Worker:
    """Erase a worker's personal data on request, keeping every row that points at them valid.

    The worker row stays (the ledger's ``CostEntry.worker``, assignments, answers and scores keep their
    foreign keys, so costs and consensus are unchanged); its marketplace id and display name are replaced
    by ``erased-<pk>``, and its Django user, if any, is renamed, stripped of name and e-mail, deactivated
    and left without a usable password.

    The audit chain is not touched, so ``audit_verify`` still passes: sealed events are never rewritten.
    Events written since workers are labelled by our own id (``Actor.from_worker``: "worker <pk>") hold
    no marketplace id or name; older events that do keep them, as the audit record the law lets us keep
    (GDPR art. 17(3)(b) and (e)); only staff with the audit permission can read them. The new
    ``worker.pseudonymised`` event names the worker by pk only and does not repeat the old values.
    """
    with transaction.atomic():
        locked = Worker.objects.select_for_update(of=("self",)).select_related("user").get(pk=worker.pk)
        if locked.external_id == f"erased-{locked.pk}":
            raise WorkerError(f"Worker {locked.pk} was already pseudonymised.")
        locked.external_id = f"erased-{locked.pk}"
        locked.display_name = f"erased worker {locked.pk}"
        locked.save(update_fields=["external_id", "display_name"])
        erased_fields = ["external_id", "display_name"]
        user = locked.user
        if user is not None:
            user.username = f"erased-user-{user.pk}"
            user.first_name = user.last_name = user.email = ""
            user.is_active = False
            user.set_unusable_password()
            user.save(update_fields=["username", "first_name", "last_name", "email", "is_active", "password"])
            # An inactive user's open sessions stop working at once (WorkerAwareBackend.get_user refuses them).
            erased_fields += ["user.username", "user.name", "user.email", "user.password"]
        record_audit_event(
            actor=actor,
            action="worker.pseudonymised",
            object_type="worker",
            object_id=locked.pk,
            after={"erased": erased_fields, "marketplace": locked.marketplace},
            reason=reason,
        )
    return locked


# What staff may change on a worker in the admin (the rest is the marketplace's or a policy's).
WORKER_EDITABLE_FIELDS = frozenset({"display_name"})
# Personal data: the trail shows that it changed, as a keyed hash, never the value (it outlives erasure).
WORKER_PERSONAL_FIELDS = frozenset({"display_name"})


def edit_worker(*, worker: Worker, actor: Actor, changes: Mapping[str, Any]) -> Worker:
    """Change a worker's editable fields (the admin's form); audited when something changed."""
    unknown = sorted(set(changes) - WORKER_EDITABLE_FIELDS)
    if unknown:
        raise WorkerError(f"These worker fields cannot be changed here: {', '.join(unknown)}.")
    with transaction.atomic():
        locked = Worker.objects.select_for_update().get(pk=worker.pk)
        changed = sorted(name for name, value in changes.items() if getattr(locked, name) != value)
        if not changed:
            return locked

        def shown(name: str) -> Any:
            value = getattr(locked, name)
            return mask_worker_id(value) if name in WORKER_PERSONAL_FIELDS else value

        before = {name: shown(name) for name in changed}
        for name in changed:
            setattr(locked, name, changes[name])
        locked.save(update_fields=changed)
        record_audit_event(
            actor=actor,
            action="worker.edited",
            object_type="worker",
            object_id=locked.pk,
            before=before,
            after={name: shown(name) for name in changed},
        )
    return locked


# --- who may do what: users, roles (groups), API tokens ------------------------------------------------
# Events name users and groups by pk; permissions by "app_label.codename". Never a password, its hash or
# a token's key.

USER_OBJECT = "user"
GROUP_OBJECT = "group"
PASSWORD_FORM_FIELDS = frozenset({"password", "password1", "password2", "usable_password"})


def _codenames(permissions: QuerySet[Permission]) -> list[str]:
    rows = permissions.values_list("content_type__app_label", "codename")
    return sorted(f"{app_label}.{codename}" for app_label, codename in rows)


def get_user_access(*, user_id: Any, lock: bool = False) -> dict[str, Any]:
    """What a user may do, as the audit trail shows it (``lock``: inside a transaction, lock the row first)."""
    users = get_user_model()._default_manager.all()
    user = (users.select_for_update() if lock else users).get(pk=user_id)
    return {
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "is_superuser": user.is_superuser,
        "groups": sorted(user.groups.values_list("name", flat=True)),
        "permissions": _codenames(user.user_permissions.all()),
        "usable_password": user.has_usable_password(),
    }


def record_user_saved(
    *, user: Any, actor: Actor, created: bool, before: dict[str, Any] | None, changed_fields: Sequence[str] = ()
) -> AuditEvent | None:
    """Audit a user saved by the admin's form (which wrote the rows): ``before`` is ``get_user_access(lock=True)``
    taken before it saved. Other changed fields (name, e-mail: personal data) are listed by name only.
    A save that changed nothing writes nothing."""
    with transaction.atomic():
        after: dict[str, Any] = get_user_access(user_id=user.pk)
        other = sorted(set(changed_fields) - set(after) - PASSWORD_FORM_FIELDS - {"groups", "user_permissions"})
        if not created and before == after and not other:
            return None
        if other:
            after["changed_fields"] = other
        return record_audit_event(
            actor=actor,
            action="user.created" if created else "user.changed",
            object_type=USER_OBJECT,
            object_id=user.pk,
            before=before,
            after=after,
        )


def delete_users(*, users: Iterable[Any], actor: Actor) -> int:
    """Delete users (their API tokens go with them), each audited with what it could do."""

    def before(user: Any) -> dict[str, Any]:
        access = get_user_access(user_id=user.pk, lock=True)
        access["api_token"] = Token.objects.filter(user_id=user.pk).exists()
        return access

    return _delete_audited(users, actor=actor, action="user.deleted", object_type=USER_OBJECT, before=before)


def _delete_audited(
    objects: Iterable[Any], *, actor: Actor, action: str, object_type: str, before: Callable[[Any], dict[str, Any]]
) -> int:
    """Delete each object in one transaction, each audited (in one batch) with ``before(obj)`` read before it went."""
    events: list[QueuedEvent] = []
    with transaction.atomic():
        for obj in list(objects):
            pk, snapshot = obj.pk, before(obj)
            obj.delete()
            events.append(QueuedEvent(actor, action, object_type, pk, before=snapshot))
        record_audit_events(events)
    return len(events)


@contextmanager
def auditing_password_change(*, user: Any, actor: Actor) -> Iterator[None]:
    """Run a password form's save inside: if the user's password changed, an event says so (and whether
    the password is usable), never the value or its hash."""
    users = get_user_model()._default_manager
    with transaction.atomic():
        old = users.select_for_update().values_list("password", flat=True).get(pk=user.pk)
        yield
        new = users.filter(pk=user.pk).values_list("password", flat=True).first()
        if new is not None and new != old:
            record_audit_event(
                actor=actor,
                action="user.password_changed",
                object_type=USER_OBJECT,
                object_id=user.pk,
                before={"usable_password": is_password_usable(old)},
                after={"usable_password": is_password_usable(new), "password_changed": True},
            )


def get_group_access(*, group_id: Any, lock: bool = False) -> dict[str, Any]:
    """A role's name and permissions as the audit trail shows them (``lock``: lock the row first)."""
    groups = Group.objects.select_for_update() if lock else Group.objects.all()
    group = groups.get(pk=group_id)
    return {"name": group.name, "permissions": _codenames(group.permissions.all())}


def record_group_saved(*, group: Group, actor: Actor, created: bool, before: dict[str, Any] | None) -> None:
    """Audit a role saved by the admin's form; ``before`` is ``get_group_access(lock=True)`` taken before it saved."""
    with transaction.atomic():
        after = get_group_access(group_id=group.pk)
        if created or before != after:
            record_audit_event(
                actor=actor,
                action="group.created" if created else "group.changed",
                object_type=GROUP_OBJECT,
                object_id=group.pk,
                before=before,
                after=after,
            )


def delete_groups(*, groups: Iterable[Group], actor: Actor) -> int:
    """Delete roles, each audited with its permissions and the users who held it."""

    def before(group: Group) -> dict[str, Any]:
        access = get_group_access(group_id=group.pk, lock=True)
        access["members"] = sorted(group.user_set.values_list("pk", flat=True))
        return access

    return _delete_audited(groups, actor=actor, action="group.deleted", object_type=GROUP_OBJECT, before=before)


def save_api_token(*, token: Token, actor: Actor) -> Token:
    """Create a user's API token, or move an existing one to another user (the admin's form); audited on the
    user who holds it, never with its key."""
    with transaction.atomic():
        previous = Token.objects.select_for_update().filter(key=token.key).values_list("user_id", flat=True).first()
        token.save()
        if previous is None:
            action, before = "api_token.created", {}
        elif previous != token.user_id:
            action, before = "api_token.reassigned", {"user": previous}
        else:
            return token
        record_audit_event(
            actor=actor,
            action=action,
            object_type=USER_OBJECT,
            object_id=token.user_id,
            before=before,
            after={"user": token.user_id, "api_token": True},
        )
    return token


def delete_api_tokens(*, tokens: Iterable[Token], actor: Actor) -> int:
    """Delete API tokens, each audited on the user who held it."""
    count = 0
    with transaction.atomic():
        for token in list(tokens):
            deleted, _ = Token.objects.filter(key=token.key).delete()
            if deleted:
                record_audit_event(
                    actor=actor,
                    action="api_token.deleted",
                    object_type=USER_OBJECT,
                    object_id=token.user_id,
                    before={"user": token.user_id, "api_token": True},
                    after={"api_token": False},
                )
                count += 1
    return count


class WorkerError(Exception):
    """A request about a worker that cannot be carried out (one sentence for the user)."""
