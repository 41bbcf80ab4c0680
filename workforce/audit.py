"""The audit trail: one hash chain of events, ``hash = sha256(previous_hash + canonical_json(event))``.

Two ways in, one chain:

* ``record_audit_event`` (configuration, publishing, blocks, grants, logins: rare, human-paced
  actions) appends at once. It locks the single ``AuditChainHead`` row, so appends form one total order.
* ``queue_audit_event`` / ``queue_audit_events`` (the internal pool's hot paths: assignment accepted,
  submitted, returned, expired) insert a ``PendingAuditEvent`` row in the caller's transaction and take
  **no** lock, so fifty workers submitting at once never queue behind each other on the chain head.
  ``seal_audit_events`` later moves pending rows into the chain: it locks the head, reads the committed
  pending rows in id order, appends each as an ``AuditEvent`` (same fields, same ``created_at``: the
  time of the action, not of the sealing) and deletes them, all in one transaction. Celery beat runs
  it every ``AUDIT_SEAL_SECONDS``; ``audit_verify``, ``audit_export`` and the admin's audit list seal
  first, so what they show is complete.

Guarantees:

* The sealed chain is tamper-evident exactly as before: editing, deleting or reordering any sealed event
  breaks its hash or the next event's ``previous_hash`` (``verify_audit_chain`` walks ``AuditEvent`` in id
  order; ids are allocated under the head lock, so id order is chain order).
* A queued event commits or rolls back with the state change it records (same transaction): no state
  change without its event, no event for a change that did not happen.
* Events of one transaction keep their order (a direct append first seals what is pending, its own
  transaction's queued events included); an event caused by an earlier committed one (an accept
  before its submit) is always sealed after it. Unrelated concurrent events are chained in the
  order their transactions became visible to the sealer; ``created_at`` keeps the wall-clock time.
* Until it is sealed (at most ``AUDIT_SEAL_SECONDS`` plus a sealing run), a pending event is protected
  only by the database: PostgreSQL refuses UPDATE on the pending table by trigger, and the ORM refuses
  saves of an existing row. A person with raw DELETE rights could drop a pending event in that window;
  a sealed event can no longer be dropped or changed without ``audit_verify`` noticing.
* Sealing is idempotent and safe to run concurrently: the head lock serialises sealers, and a pending
  row is deleted in the transaction that chains it.
* An event is hashed on exactly what the database gives back (``storable_json``: PostgreSQL's jsonb has no
  ``-0.0`` and spells ``1e+23`` as the whole number ``100000000000000000000000``), so an untouched chain
  always verifies; events stored before that are checked with their earlier reading as a fallback.
* The database guards the chain too (migrations 0002, 0003, 0005 and 0007): on PostgreSQL and SQLite alike,
  triggers refuse UPDATE and DELETE of audit events, UPDATE of pending events, DELETE of the chain head and
  any UPDATE lowering its count; on PostgreSQL, TRUNCATE of the events or of the head unless both are emptied
  together (a whole reset, which a kept checkpoint catches). Nothing in the application changes or deletes a
  sealed event (privacy erasure pseudonymises workers, never the trail). The one way past the row guards is
  ``audit_guards_lifted``: maintenance, and Django's flush on SQLite, which empties every table row by row.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import islice, product
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from workforce.models import AuditChainHead, AuditEvent, PendingAuditEvent, Worker
from workforce.request_context import current_request_id


@dataclass(frozen=True)
class Actor:
    """Who did something: a staff user, a worker, or a named system process or policy."""

    kind: str
    id: str
    label: str

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(kind=AuditEvent.ActorKind.SYSTEM, id="", label=name)

    @classmethod
    def from_user(cls, user: Any) -> Actor:
        return cls(kind=AuditEvent.ActorKind.USER, id=str(user.pk), label=user.get_username())

    @classmethod
    def from_worker(cls, worker: Worker) -> Actor:
        # Our own id only: marketplace ids and names are personal data, and sealed events are never
        # rewritten, so they are kept out of the trail (see ``workforce.services.pseudonymise_worker``).
        return cls(kind=AuditEvent.ActorKind.WORKER, id=str(worker.pk), label=f"worker {worker.pk}")


CANONICAL_FIELDS = (
    "created_at",
    "actor_kind",
    "actor_id",
    "actor_label",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "reason",
    "request_id",
)


def _same_number_everywhere(value: Any) -> Any:
    """A float of 1e16 or more is a whole number that Python writes as ``1e+16`` but PostgreSQL's jsonb gives
    back as the integer ``10000000000000000``: hash it as that integer, so the event hashes the same before
    it is stored and after it is read back. (Kept as it was for the events already stored; new events are
    hashed after ``storable_json``, which leaves no such float, so this changes nothing for them.)"""
    if isinstance(value, float) and math.isfinite(value) and abs(value) >= 1e16:
        return int(value)
    if isinstance(value, dict):
        return {key: _same_number_everywhere(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_same_number_everywhere(item) for item in value]
    return value


def storable_json(value: Any) -> Any:
    """``value`` (plain JSON data) exactly as the database will give it back, so an event is hashed on what
    ``verify_audit_chain`` later reads: PostgreSQL's jsonb keeps numbers as decimals, so it turns ``-0.0``
    into ``0.0`` and a float of 1e16 or more (``1e+23``) into the whole number its shortest decimal spells
    (``100000000000000000000000``, not ``int(1e23)``). Applied before storing and hashing, on every
    database, so SQLite stores the same values PostgreSQL would."""
    if isinstance(value, float):
        if value == 0.0:
            return 0.0
        if math.isfinite(value) and abs(value) >= 1e16:
            return int(Decimal(repr(value)))
        return value
    if isinstance(value, dict):
        return {key: storable_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(item) for item in value]
    return value


def canonical_event(fields: Mapping[str, Any]) -> str:
    """The event as canonical JSON: sorted keys, no whitespace, aware timestamp in ISO format."""
    payload = {name: _same_number_everywhere(fields[name]) for name in CANONICAL_FIELDS}
    payload["created_at"] = fields["created_at"].isoformat()
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def chain_hash(previous_hash: str, canonical: str) -> str:
    return hashlib.sha256((previous_hash + canonical).encode()).hexdigest()


def record_audit_event(
    *,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: object,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
    request_id: str = "",
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction.

    Pending events visible to this transaction (its own queued ones included) are sealed first, so an
    event queued earlier in the same transaction stays before this one in the chain.
    """
    [event] = record_audit_events(
        [QueuedEvent(actor, action, object_type, object_id, before, after, reason, request_id)]
    )
    return event


def record_audit_events(events: Sequence[QueuedEvent]) -> list[AuditEvent]:
    """Append ``events`` to the chain in order, inside the caller's transaction, as ``record_audit_event``
    does for one: the chain head is locked once and the events are inserted in one statement, so a batch
    (a reviewer approving a page of assignments) costs the same few queries as a single event."""
    if not events:
        return []
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(id=1)
        last_hash, count = _seal_pending(head.last_hash, head.count, limit=None)
        chained: list[AuditEvent] = []
        for e in events:
            fields = e.fields()
            digest = chain_hash(last_hash, canonical_event(fields))
            chained.append(AuditEvent(previous_hash=last_hash, hash=digest, **fields))
            last_hash = digest
        created = AuditEvent.objects.bulk_create(chained, batch_size=1000)
        AuditChainHead.objects.filter(id=1).update(last_hash=last_hash, count=count + len(created))
    return created


def _event_fields(
    *,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: object,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    reason: str,
    request_id: str,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "created_at": created_at or timezone.now(),
        "actor_kind": str(actor.kind),
        "actor_id": actor.id,
        "actor_label": actor.label,
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "before": storable_json(json.loads(json.dumps(before or {}, default=str))),
        "after": storable_json(json.loads(json.dumps(after or {}, default=str))),
        "reason": reason,
        "request_id": request_id or current_request_id.get(),
    }


@dataclass(frozen=True)
class QueuedEvent:
    """One event for ``queue_audit_events`` (the arguments of ``record_audit_event``)."""

    actor: Actor
    action: str
    object_type: str
    object_id: object
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    reason: str = ""
    request_id: str = ""
    created_at: datetime | None = None

    def fields(self) -> dict[str, Any]:
        """The stored fields of the event (its time is now unless ``created_at`` says otherwise)."""
        return _event_fields(
            actor=self.actor,
            action=self.action,
            object_type=self.object_type,
            object_id=self.object_id,
            before=self.before,
            after=self.after,
            reason=self.reason,
            request_id=self.request_id,
            created_at=self.created_at,
        )


# For hot statements that insert their pending event themselves (one round trip, see tasks.services.pool).
PENDING_EVENT_INSERT = (
    "INSERT INTO workforce_pendingauditevent (created_at, actor_kind, actor_id, actor_label, action, object_type, "
    "object_id, before, after, reason, request_id)"
)


def hot_statement_audit_params(actor: Actor) -> dict[str, str]:
    """The actor and request id of a pending event written by SQL: ``%(audit_actor_kind)s`` and so on."""
    return {
        "audit_actor_kind": str(actor.kind),
        "audit_actor_id": actor.id,
        "audit_actor_label": actor.label,
        "audit_request_id": current_request_id.get(),
    }


def queue_audit_events(events: Sequence[QueuedEvent]) -> None:
    """Insert events for the next sealing run, in order, without locking the chain (hot paths)."""
    if not events:
        return
    PendingAuditEvent.objects.bulk_create([PendingAuditEvent(**e.fields()) for e in events])


def queue_audit_event(
    *,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: object,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
    created_at: datetime | None = None,
) -> None:
    """Like ``record_audit_event``, but chained later by ``seal_audit_events`` (no lock taken now)."""
    queue_audit_events(
        [QueuedEvent(actor, action, object_type, object_id, before, after, reason, created_at=created_at)]
    )


def _seal_pending(last_hash: str, count: int, *, limit: int | None) -> tuple[str, int]:
    """Chain pending events after ``last_hash`` (the caller holds the head lock); the new (hash, count)."""
    rows = PendingAuditEvent.objects.order_by("id")
    pending = list(rows[:limit] if limit is not None else rows)
    if not pending:
        return last_hash, count
    sealed: list[AuditEvent] = []
    for row in pending:
        fields = {name: getattr(row, name) for name in CANONICAL_FIELDS}
        fields["before"], fields["after"] = storable_json(fields["before"]), storable_json(fields["after"])
        digest = chain_hash(last_hash, canonical_event(fields))
        sealed.append(AuditEvent(previous_hash=last_hash, hash=digest, **fields))
        last_hash = digest
    AuditEvent.objects.bulk_create(sealed, batch_size=1000)
    PendingAuditEvent.objects.filter(id__in=[row.pk for row in pending]).delete()
    return last_hash, count + len(sealed)


def seal_audit_events(*, limit: int = 5000) -> int:
    """Chain up to ``limit`` committed pending events, oldest first; return how many were sealed."""
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(id=1)
        last_hash, count = _seal_pending(head.last_hash, head.count, limit=limit)
        if count != head.count:
            AuditChainHead.objects.filter(id=1).update(last_hash=last_hash, count=count)
    return count - head.count


def seal_all_audit_events() -> int:
    """Seal until nothing committed is pending (before verifying, exporting or showing the trail)."""
    total = 0
    while sealed := seal_audit_events():
        total += sealed
    return total


ZERO_HASH = "0" * 64
LEGACY_READINGS = 256  # at most this many earlier readings of one broken event are tried


def _legacy_readings(value: Any) -> list[Any]:
    """What code before ``storable_json`` may have hashed for a value PostgreSQL gives back as ``value``:
    ``-0.0`` for ``0.0``, ``int(f)`` for the whole number ``f``'s shortest decimal spells. At most
    ``LEGACY_READINGS`` combinations, the value as read first."""
    if isinstance(value, float) and value == 0.0:
        return [value, -0.0]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**16:
        try:
            as_float = float(value)
        except OverflowError:
            return [value]
        if int(as_float) != value and int(Decimal(repr(as_float))) == value:
            return [value, int(as_float)]
        return [value]
    if isinstance(value, dict):
        keys = list(value)
        combos = islice(product(*(_legacy_readings(value[key]) for key in keys)), LEGACY_READINGS)
        return [dict(zip(keys, combo, strict=True)) for combo in combos]
    if isinstance(value, list):
        return [list(combo) for combo in islice(product(*(_legacy_readings(item) for item in value)), LEGACY_READINGS)]
    return [value]


def event_hash_matches(event: AuditEvent) -> bool:
    """Whether ``event.hash`` is the hash of its fields after its own ``previous_hash``.

    An event stored on PostgreSQL before payloads went through ``storable_json`` was hashed on ``-0.0`` or
    on ``int(1e23)`` but reads back ``0.0`` or ``10**23``; when the plain hash fails, those earlier
    readings of its numbers (and only those: the same numbers, written another way) are tried too.
    """
    fields = {name: getattr(event, name) for name in CANONICAL_FIELDS}
    if event.hash == chain_hash(event.previous_hash, canonical_event(fields)):
        return True
    readings = product(_legacy_readings(fields["before"]), _legacy_readings(fields["after"]))
    for before, after in islice(readings, 1, LEGACY_READINGS):  # the first is the plain reading, tried above
        if event.hash == chain_hash(event.previous_hash, canonical_event({**fields, "before": before, "after": after})):
            return True
    return False


def find_broken_audit_events() -> Iterator[AuditEvent]:
    """Walk the whole chain in id order and yield every event that does not hold: its hash is not the hash
    of its fields (it was changed), or its ``previous_hash`` is not the hash of the event before it (an
    event before it was deleted, or it was inserted or moved). The walk goes on from each event's stored
    hash, so one change is reported once, not again for every event after it."""
    previous = ZERO_HASH
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        if event.previous_hash != previous or not event_hash_matches(event):
            yield event
        previous = event.hash


def verify_audit_chain() -> AuditEvent | None:
    """The first event that does not hold (see ``find_broken_audit_events``), or None.

    Also catches a deleted event: the next one's ``previous_hash`` no longer matches.
    """
    return next(find_broken_audit_events(), None)


def check_chain_end() -> str | None:
    """Compare the trail's end with the chain head: a sentence when events were cut from the end, or None.

    ``verify_audit_chain`` catches an event changed, inserted or deleted before the last one; deleting
    the newest events (or every event) leaves a shorter chain that is whole in itself. The head row records
    how many events were chained and the last hash, so such a cut shows here. Read under the head lock, so
    events being appended cannot make a false alarm.
    """
    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update().filter(id=1).first()
        expected_count, expected_hash = (head.count, head.last_hash) if head else (0, "0" * 64)
        count = AuditEvent.objects.count()
        last = AuditEvent.objects.order_by("-id").values_list("id", "hash").first()
    last_hash = last[1] if last else "0" * 64
    if count == expected_count and last_hash == expected_hash:
        return None
    where = f"ends at event {last[0]}" if last else "is empty"
    return (
        f"The trail {where} with {count} event(s), but {expected_count} were chained (last hash "
        f"{expected_hash[:12]}…, the trail's is {last_hash[:12]}…): events were removed from its end, or the "
        "chain head was altered."
    )


CHECKPOINT_FORMAT = "<number of events>:<hash of the last one>"


def chain_checkpoint() -> str:
    """The chain's current checkpoint, ``count:last hash``: kept outside the database (a ticket, the log
    system, write-once storage), it lets ``check_checkpoints`` prove later that the first ``count`` events
    were not rewritten, even by someone who re-hashed the whole chain in the database."""
    head = AuditChainHead.objects.filter(id=1).values_list("count", "last_hash").first()
    count, last_hash = head if head else (0, "0" * 64)
    return f"{count}:{last_hash}"


def parse_checkpoint(text: str) -> tuple[int, str]:
    """``count:hash`` as written by ``chain_checkpoint``; ValueError with a sentence otherwise."""
    count, _, digest = text.strip().partition(":")
    significant = count.lstrip("0")  # no leading zeros; empty for a count of 0
    if not count.isascii() or not count.isdigit() or not significant or len(digest) != 64:
        raise ValueError(f"A checkpoint is written {CHECKPOINT_FORMAT} (64 hex digits), not {text!r}.")
    largest = 2**63 - 1  # the largest row offset a database takes (a signed 64-bit integer)
    if len(significant) > len(str(largest)) or int(significant) > largest:
        raise ValueError(f"A checkpoint counts at most {largest} events, not {text!r}.")
    try:
        int(digest, 16)
    except ValueError:
        raise ValueError(f"A checkpoint is written {CHECKPOINT_FORMAT} (64 hex digits), not {text!r}.") from None
    return int(significant), digest.lower()


def check_checkpoints(checkpoints: Sequence[tuple[int, str]]) -> str | None:
    """A sentence for the first checkpoint the chain no longer matches (its ``count``-th event has another
    hash, or the chain is shorter), or None. Run after ``verify_audit_chain``: the chain is then whole, so
    a matching hash vouches for every event up to it."""
    for count, digest in sorted(checkpoints):
        found = AuditEvent.objects.order_by("id").values_list("id", "hash")[count - 1 : count].first()
        if found is None:
            return f"The checkpoint at event number {count} is beyond the trail's end: events were removed."
        if found[1] != digest:
            return (
                f"Event number {count} (id {found[0]}) has hash {found[1][:12]}…, not the checkpoint's "
                f"{digest[:12]}…: the trail was rewritten at or before it."
            )
    return None


# The row guards of the audit tables, by vendor: (table, trigger) as the migrations name them.
ROW_GUARDS = {
    "postgresql": (
        ("workforce_auditevent", "workforce_auditevent_append_only"),  # 0002
        ("workforce_pendingauditevent", "workforce_pendingauditevent_no_update"),  # 0003
        ("workforce_auditchainhead", "workforce_auditchainhead_forward_only"),  # 0005
    ),
    "sqlite": (
        ("workforce_auditchainhead", "workforce_auditchainhead_forward_only"),  # 0005
        ("workforce_auditevent", "workforce_auditevent_no_update"),  # 0007, and the three below
        ("workforce_auditevent", "workforce_auditevent_no_delete"),
        ("workforce_pendingauditevent", "workforce_pendingauditevent_no_update"),
        ("workforce_auditchainhead", "workforce_auditchainhead_no_delete"),
    ),
}


@contextmanager
def audit_guards_lifted(*, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Maintenance only: run the body with the audit tables' row guards off, inside one transaction that
    switches them off first and on again last (PostgreSQL ``ALTER TABLE ... DISABLE TRIGGER``; SQLite, which
    cannot disable a trigger, drops it and creates it again from the SQL it had). DDL is transactional on
    both, so other connections never see the tables unguarded and an error in the body restores the guards
    by rollback. It needs the tables' owner (DDL rights), which the application's database role should not
    have in production. Used by ``flush`` on SQLite (a whole reset, see migration 0007) and by the tests that
    play someone tampering with the trail; whatever it changes, ``audit_verify`` still checks."""
    connection = connections[using]
    guards = ROW_GUARDS.get(connection.vendor, ())
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            names = [name for _table, name in guards]
            marks = ", ".join("%s" for _ in names)
            cursor.execute(f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN ({marks})", names)
            kept = cursor.fetchall()
            for name, _sql in kept:
                cursor.execute(f"DROP TRIGGER {connection.ops.quote_name(name)}")
            yield
            for _name, sql in kept:
                cursor.execute(sql)
            return
        for table, name in guards:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {name}")
        yield
        for table, name in guards:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {name}")
