"""Invitations: how a person comes into the internal pool.

Staff create invitations (``invite_workers``): fresh ones, for people new to us, or ones naming imported
workers (an MTurk worker whose history was imported), so the person who accepts takes over that worker row
and keeps everything that hangs off it (assignments, scores, grants, blocks, ledger rows). Each invitation
is a one-time link whose token is returned once and stored only as a SHA-256 digest.

``accept_invitation`` (an existing account) and ``join_with_new_account`` (the join page's sign-up) use a
link once, under a lock on the invitation row; every write is audited, naming workers, users and
invitations by our own ids only: never a token, a digest, a marketplace id or a user name.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from workforce.audit import Actor, QueuedEvent, record_audit_event, record_audit_events
from workforce.models import AuditEvent, Invitation, Marketplace, Worker
from workforce.services import USER_OBJECT, WorkerError, get_user_access, register_internal_worker

INVITATION_OBJECT = "invitation"
DEFAULT_VALID_DAYS = 14  # settings.WORKER_INVITATION_VALID_DAYS overrides it
MAX_VALID_DAYS = 90
MAX_FRESH_INVITATIONS = 200
MAX_TOKEN_LENGTH = 128  # ``secrets.token_urlsafe(32)`` is 43 characters; anything much longer is not ours

# States, as the admin shows them.
OPEN, ACCEPTED, EXPIRED, REVOKED = "open", "accepted", "expired", "revoked"
STATES = (OPEN, ACCEPTED, EXPIRED, REVOKED)

# Why an invitation cannot be used (``InvitationError.code``). The link codes describe the link itself:
# the join page answers them without detail (404 for UNKNOWN, 410 for the others).
UNKNOWN, USED, BLOCKED = "unknown", "used", "blocked"
LINK_CODES = frozenset({UNKNOWN, USED, EXPIRED, REVOKED, BLOCKED})
ACCOUNT = "account"  # the account that would join cannot (staff, already a worker, a bad user name or password)
REQUEST = "request"  # a request staff made that cannot be carried out (bad count, workers that cannot join)


class InvitationError(WorkerError):
    """An invitation that cannot be created, used or revoked: one sentence for the user, and a ``code``."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


def hash_token(token: str) -> str:
    """The stored form of an invitation token."""
    return hashlib.sha256(token.encode()).hexdigest()


def joiner_actor(user: Any) -> Actor:
    """The audit trail's actor for a person joining the pool: their user by id, never their user name."""
    return Actor(kind=AuditEvent.ActorKind.USER, id=str(user.pk), label=f"user {user.pk}")


def _user_id_of(actor: Actor) -> int | None:
    return int(actor.id) if actor.kind == AuditEvent.ActorKind.USER and actor.id.isdigit() else None


def _valid_days(valid_days: int | None) -> int:
    days = getattr(settings, "WORKER_INVITATION_VALID_DAYS", DEFAULT_VALID_DAYS) if valid_days is None else valid_days
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_VALID_DAYS:
        raise InvitationError(f"An invitation is valid for 1 to {MAX_VALID_DAYS} days.", code=REQUEST)
    return days


# --- writes ---------------------------------------------------------------------------------------------


def invite_workers(
    *,
    actor: Actor,
    workers: Iterable[Worker] = (),
    count: int = 0,
    note: str = "",
    valid_days: int | None = None,
    now: datetime | None = None,
) -> list[tuple[Invitation, str]]:
    """Create invitations: one per imported worker in ``workers``, or ``count`` fresh ones; returns each
    invitation with its token (shown once: only its digest is stored).

    Workers that cannot join are refused all together, with how many and why: those that already have an
    account, internal-pool workers, blocked workers (ops may unblock them first) and erased ones. A worker's
    earlier invitations that were not used are revoked: only the newest link works.
    """
    now = now or timezone.now()
    expires_at = now + timedelta(days=_valid_days(valid_days))
    note = note.strip()
    if len(note) > Invitation._meta.get_field("note").max_length:  # type: ignore[operator]
        raise InvitationError("The note is too long (255 characters at most).", code=REQUEST)
    worker_ids = sorted({w.pk for w in workers})
    if worker_ids and count:
        raise InvitationError("Invite either the given workers or a number of new people, not both.", code=REQUEST)
    if not worker_ids and not 1 <= count <= MAX_FRESH_INVITATIONS:
        raise InvitationError(f"Create 1 to {MAX_FRESH_INVITATIONS} invitations at a time.", code=REQUEST)
    created_by_id = _user_id_of(actor)
    with transaction.atomic():
        targets: list[Worker | None] = list(_lock_invitable(worker_ids)) if worker_ids else [None] * count
        events = _supersede(worker_ids, actor=actor, now=now) if worker_ids else []
        tokens = [secrets.token_urlsafe(32) for _ in targets]
        invitations = Invitation.objects.bulk_create(
            [
                Invitation(
                    token_digest=hash_token(token),
                    created_by_id=created_by_id,
                    created_at=now,
                    expires_at=expires_at,
                    worker=worker,
                    note=note,
                )
                for token, worker in zip(tokens, targets, strict=True)
            ]
        )
        events += [
            QueuedEvent(
                actor,
                "invitation.created",
                INVITATION_OBJECT,
                invitation.pk,
                after={"state": OPEN, "worker": invitation.worker_id, "expires_at": expires_at.isoformat()},
            )
            for invitation in invitations
        ]
        record_audit_events(events)
    return list(zip(invitations, tokens, strict=True))


def _lock_invitable(worker_ids: list[int]) -> list[Worker]:
    """The workers, locked, or an error saying how many of them cannot be invited and why."""
    locked = list(Worker.objects.select_for_update().filter(pk__in=worker_ids).order_by("pk"))
    if len(locked) != len(worker_ids):
        raise InvitationError(f"{len(worker_ids) - len(locked)} of the workers do not exist.", code=REQUEST)
    reasons = {
        "already have an account in the pool": [w for w in locked if w.user_id is not None],
        "are internal-pool workers (invite new people with fresh invitations)": [
            w for w in locked if w.user_id is None and w.marketplace == Marketplace.INTERNAL
        ],
        "are blocked (unblock them first)": [
            w for w in locked if w.user_id is None and w.marketplace != Marketplace.INTERNAL and w.is_blocked
        ],
        "were erased on request": [
            w
            for w in locked
            if w.user_id is None
            and w.marketplace != Marketplace.INTERNAL
            and not w.is_blocked
            and w.external_id == f"erased-{w.pk}"
        ],
    }
    refused = [f"{len(ws)} {why}" for why, ws in reasons.items() if ws]
    if refused:
        bad = sum(len(ws) for ws in reasons.values())
        raise InvitationError(
            f"{bad} of the {len(locked)} workers cannot be invited: {'; '.join(refused)}. No invitation was created.",
            code=REQUEST,
        )
    return locked


def _supersede(worker_ids: list[int], *, actor: Actor, now: datetime) -> list[QueuedEvent]:
    """Revoke the workers' unused invitations (a new one replaces them); their audit events."""
    earlier = Invitation.objects.select_for_update().filter(
        worker_id__in=worker_ids, accepted_at__isnull=True, revoked_at__isnull=True
    )
    return _revoke_locked(list(earlier.order_by("pk")), actor=actor, now=now, reason="replaced by a new invitation")


def revoke_invitations(
    *, invitations: Iterable[Invitation], actor: Actor, reason: str = "", now: datetime | None = None
) -> int:
    """Revoke the invitations not used yet (expired ones too); returns how many were revoked. Accepted or
    already revoked ones are left as they are."""
    now = now or timezone.now()
    ids = sorted({i.pk for i in invitations})
    with transaction.atomic():
        locked = list(
            Invitation.objects.select_for_update()
            .filter(pk__in=ids, accepted_at__isnull=True, revoked_at__isnull=True)
            .order_by("pk")
        )
        record_audit_events(_revoke_locked(locked, actor=actor, now=now, reason=reason))
    return len(locked)


def revoke_invitation(*, invitation: Invitation, actor: Actor, reason: str = "", now: datetime | None = None) -> None:
    """Revoke one invitation; refused when it was accepted or revoked already."""
    if not revoke_invitations(invitations=[invitation], actor=actor, reason=reason, now=now):
        raise InvitationError(f"Invitation {invitation.pk} was already accepted or revoked.", code=REQUEST)


def _revoke_locked(locked: list[Invitation], *, actor: Actor, now: datetime, reason: str) -> list[QueuedEvent]:
    if not locked:
        return []
    Invitation.objects.filter(pk__in=[i.pk for i in locked]).update(revoked_at=now)
    return [
        QueuedEvent(
            actor,
            "invitation.revoked",
            INVITATION_OBJECT,
            i.pk,
            before={"state": get_invitation_state(i, now=now)},
            after={"state": REVOKED},
            reason=reason,
        )
        for i in locked
    ]


def accept_invitation(*, token: str, user: Any, actor: Actor, now: datetime | None = None) -> Worker:
    """Use an invitation for ``user``: they become the invitation's imported worker (the row and its history
    are linked to their account), or a new internal-pool worker. Once only, under a lock on the invitation."""
    now = now or timezone.now()
    with transaction.atomic():
        invitation = _lock_usable(token, now=now)
        _lock_joining_user(user)
        claimed = Invitation.objects.filter(
            pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=now
        ).update(accepted_at=now, accepted_by=user)
        if not claimed:  # SQLite takes no row lock: the conditional update is what lets one use through
            raise InvitationError("This invitation link was already used.", code=USED)
        if invitation.worker_id is None:
            worker = register_internal_worker(user=user, actor=actor)
        else:
            worker = _link_worker(invitation, user=user, actor=actor)
        record_audit_event(
            actor=actor,
            action="invitation.accepted",
            object_type=INVITATION_OBJECT,
            object_id=invitation.pk,
            before={"state": OPEN, "worker": invitation.worker_id, "worker_user": None},
            after={"state": ACCEPTED, "worker": worker.pk, "worker_user": user.pk, "user": user.pk},
        )
    return worker


def join_with_new_account(*, token: str, username: str, password: str, now: datetime | None = None) -> Worker:
    """The join page's sign-up: create the user and accept the invitation for them, in one transaction (a link
    that cannot be used creates no account). The password passes Django's validators."""
    now = now or timezone.now()
    user_model = get_user_model()
    users = user_model._default_manager
    with transaction.atomic():
        _lock_usable(token, now=now)  # before anything is created
        username = user_model.normalize_username(username.strip())
        if not username:
            raise InvitationError("Choose a user name.", code=ACCOUNT)
        if users.filter(**{f"{user_model.USERNAME_FIELD}__iexact": username}).exists():
            raise InvitationError("That user name is taken; choose another.", code=ACCOUNT)
        try:
            password_validation.validate_password(password, user_model(**{user_model.USERNAME_FIELD: username}))
        except ValidationError as exc:
            raise InvitationError(" ".join(exc.messages), code=ACCOUNT) from exc
        try:
            with transaction.atomic():
                user = users.create_user(**{user_model.USERNAME_FIELD: username}, password=password)
        except IntegrityError as exc:  # taken between the check and the insert
            raise InvitationError("That user name is taken; choose another.", code=ACCOUNT) from exc
        actor = joiner_actor(user)
        record_audit_event(
            actor=actor,
            action="user.created",
            object_type=USER_OBJECT,
            object_id=user.pk,
            after=get_user_access(user_id=user.pk),
            reason="signed up on an invitation link",
        )
        return accept_invitation(token=token, user=user, actor=actor, now=now)


def _lock_usable(token: str, *, now: datetime) -> Invitation:
    """The token's invitation, locked, if it can still be used; else an ``InvitationError`` with a link code."""
    return _usable(_find(token, lock=True), now=now)


def _find(token: str, *, lock: bool) -> Invitation | None:
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH:
        return None
    invitations = Invitation.objects.select_for_update() if lock else Invitation.objects.all()
    return invitations.filter(token_digest=hash_token(token)).first()


def _usable(invitation: Invitation | None, *, now: datetime) -> Invitation:
    if invitation is None:
        raise InvitationError("This invitation link is not valid.", code=UNKNOWN)
    state = get_invitation_state(invitation, now=now)
    refusals = {
        ACCEPTED: ("This invitation link was already used.", USED),
        REVOKED: ("This invitation link was withdrawn.", REVOKED),
        EXPIRED: ("This invitation link has expired.", EXPIRED),
    }
    if state in refusals:
        message, code = refusals[state]
        raise InvitationError(message, code=code)
    return invitation


def _lock_joining_user(user: Any) -> None:
    """Lock the user's row (one join at a time per account) and check they may join the pool."""
    fresh = get_user_model()._default_manager.select_for_update().filter(pk=user.pk).first()
    if fresh is None or not fresh.is_active:
        raise InvitationError("This account cannot join the pool.", code=ACCOUNT)
    if fresh.is_staff or fresh.is_superuser:
        raise InvitationError(
            "Staff accounts cannot join the worker pool; log out and join with a new account.", code=ACCOUNT
        )
    if Worker.objects.filter(user_id=user.pk).exists():
        raise InvitationError("This account already works in the pool.", code=ACCOUNT)


def _link_worker(invitation: Invitation, *, user: Any, actor: Actor) -> Worker:
    assert invitation.worker_id is not None
    worker = Worker.objects.select_for_update().get(pk=invitation.worker_id)
    if worker.user_id is not None:
        raise InvitationError("This invitation link was already used.", code=USED)
    if worker.is_blocked:
        raise InvitationError("This invitation link can no longer be used.", code=BLOCKED)
    worker.user = user
    worker.save(update_fields=["user"])
    record_audit_event(
        actor=actor,
        action="worker.user_linked",
        object_type="worker",
        object_id=worker.pk,
        before={"user": None},
        after={"user": user.pk, "invitation": invitation.pk},
    )
    return worker


# --- reads ----------------------------------------------------------------------------------------------


def get_open_invitation(*, token: str, now: datetime | None = None) -> Invitation:
    """The token's invitation while it can be used (the join page's GET); else an ``InvitationError``."""
    return _usable(_find(token, lock=False), now=now or timezone.now())


def get_invitation_state(invitation: Invitation, *, now: datetime | None = None) -> str:
    if invitation.revoked_at is not None:
        return REVOKED
    if invitation.accepted_at is not None:
        return ACCEPTED
    if invitation.expires_at <= (now or timezone.now()):
        return EXPIRED
    return OPEN


def filter_invitations_by_state(queryset: QuerySet[Invitation], state: str, *, now: datetime | None = None) -> Any:
    """The invitations of ``queryset`` in ``state`` (one of ``STATES``)."""
    now = now or timezone.now()
    unused = Q(accepted_at__isnull=True, revoked_at__isnull=True)
    conditions = {
        OPEN: unused & Q(expires_at__gt=now),
        EXPIRED: unused & Q(expires_at__lte=now),
        ACCEPTED: Q(accepted_at__isnull=False),
        REVOKED: Q(revoked_at__isnull=False),
    }
    return queryset.filter(conditions[state])
