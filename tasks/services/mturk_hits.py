"""MTurk HIT upkeep: extra assignments, pause/resume/cancel by expiration, reconcile, DeleteHIT housekeeping."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeGuard

from django.db import OperationalError, transaction
from django.db.models import Q
from django.utils import timezone

from tasks.models import (
    AssignmentState,
    Hit,
    HitState,
    Job,
    JobState,
    MTurkHit,
)
from tasks.reports.estimate import hits_cost
from tasks.services.budget import BudgetExceeded, reserve_budget
from tasks.services.errors import ServiceError
from tasks.services.extra_answers import TAKES_MORE_ANSWERS
from tasks.services.mturk_common import MTURK, commit_hit_slots, job_options, mturk_connector
from tasks.services.mturk_escrow import sync_hit_escrow
from tasks.services.mturk_extensions import adopt_lost_extension
from tasks.services.mturk_publishing import record_published_hit
from workforce.audit import Actor, record_audit_event
from workforce.marketplaces.base import MarketplaceError, PublishedHit
from workforce.marketplaces.mturk import MTurkMarketplace, RemoteHit, request_token
from workforce.marketplaces.mturk_fees import LARGE_HIT_ASSIGNMENTS, additional_assignments_cost

logger = logging.getLogger(__name__)
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a NOWAIT lock another transaction holds


def extend_mturk_hit(
    *,
    hit: Hit,
    additional: int,
    actor: Actor,
    connector: MTurkMarketplace | None = None,
) -> Hit:
    """Ask for ``additional`` more answers on a published HIT (CreateAdditionalAssignmentsForHIT). A HIT
    created with fewer than 10 assignments can never reach 10: MTurk refuses, so we refuse first.

    The request is for a total, ``assignments_wanted + additional`` as this call finds it, and its token
    names that total. Before asking, the HIT is read (GetHIT) and assignments MTurk added for a call whose
    booking was lost (a crash after MTurk's answer) are adopted into the ledger (``adopt_lost_extension``);
    only what the total still lacks is asked for. So a retry of a lost call never pays twice, and a
    different request after it never leaves what MTurk took for the lost one out of the ledger.

    A job that is not running or completed (cancelled, say) takes no more assignments: MTurk is not asked."""
    connector = mturk_connector(connector)
    hit = Hit.objects.select_related("job").get(pk=hit.pk)
    info = MTurkHit.objects.filter(hit_id=hit.pk, published_at__isnull=False).first()
    if info is None or not hit.external_id:
        raise ServiceError(f"Hit {hit.pk} is not published on MTurk.")
    if hit.state == HitState.CANCELLED:
        raise ServiceError(f"Hit {hit.pk} is cancelled; it takes no more assignments.")
    with transaction.atomic():  # under the job row's lock (held to the end of the caller's transaction, if any)
        state = Job.objects.select_for_update().values_list("state", flat=True).get(pk=hit.job_id)
    if state not in TAKES_MORE_ANSWERS:
        raise ServiceError(f"Job {hit.job_id} is {state}; its HITs take no more assignments.")
    if additional < 1:
        raise ServiceError("Ask for at least one more assignment.")
    target = hit.assignments_wanted + additional
    if info.max_assignments < LARGE_HIT_ASSIGNMENTS <= target:
        raise ServiceError(
            f"HIT {hit.external_id} was created with {info.max_assignments} assignments; MTurk never lets a HIT "
            f"created with fewer than {LARGE_HIT_ASSIGNMENTS} reach {LARGE_HIT_ASSIGNMENTS} or more "
            f"(at most {LARGE_HIT_ASSIGNMENTS - 1 - hit.assignments_wanted} more). Publish a new Hit instead."
        )
    wanted = adopt_lost_extension(hit=hit, remote=connector.get_hit(hit.external_id), actor=actor).wanted
    if wanted < target:
        _extend_to(hit, info, wanted=wanted, target=target, connector=connector, actor=actor)
    hit.refresh_from_db()
    return hit


def _extend_to(
    hit: Hit, info: MTurkHit, *, wanted: int, target: int, connector: MTurkMarketplace, actor: Actor
) -> None:
    """CreateAdditionalAssignmentsForHIT from ``wanted`` to ``target`` (token: the target), then book the new
    slots under the Hit's row lock (slot keys: booked once, whoever books them first)."""
    additional = target - wanted
    token = request_token("extend", hit.uuid.hex, str(target))
    connector.create_additional_assignments(str(hit.external_id), count=additional, token=token)
    cost = additional_assignments_cost(
        info.reward, original_max_assignments=info.max_assignments, additional=additional, masters=info.masters
    )
    with transaction.atomic():
        Hit.objects.select_for_update().filter(pk=hit.pk).values_list("pk", flat=True).first()
        Hit.objects.filter(pk=hit.pk, assignments_wanted__lt=target).exclude(state=HitState.CANCELLED).update(
            assignments_wanted=target, state=HitState.OPEN
        )
        commit_hit_slots(
            hit=hit,
            reward=info.reward,
            fee=cost.fees / additional,
            slots=range(wanted, target),
            reference=str(hit.external_id),
        )
        record_audit_event(
            actor=actor,
            action="mturk.hit_extended",
            object_type="hit",
            object_id=hit.pk,
            before={"assignments_wanted": wanted},
            after={"assignments_wanted": target},
        )


def set_mturk_job_availability(
    *, job: Job, open_: bool, actor: Actor, connector: MTurkMarketplace | None = None
) -> int:
    """Pause/cancel (``open_=False``: every live HIT expires now) or resume (``open_=True``: live again for
    the job's lifetime). MTurk has no pause: expiring stops new accepts, work in progress may still arrive.
    Each HIT's unfilled slots are released (or, on resume, committed again) with ``sync_hit_escrow``."""
    connector = mturk_connector(connector)
    hits = Hit.objects.filter(job=job, marketplace=MTURK, external_id__isnull=False, mturk__deleted_at__isnull=True)
    hits = hits.exclude(state=HitState.COMPLETE)
    if open_:
        hits = hits.exclude(state=HitState.CANCELLED)
    expire_at = timezone.now() + job_options(job).lifetime
    changed = 0
    for hit in hits.order_by("id"):
        _set_expiry(hit, open_until=expire_at if open_ else None, connector=connector, actor=actor)
        changed += 1
    with transaction.atomic():
        record_audit_event(
            actor=actor,
            action="mturk.hits_resumed" if open_ else "mturk.hits_expired",
            object_type="job",
            object_id=job.pk,
            after={"hits": changed},
        )
    return changed


def _set_expiry(hit: Hit, *, open_until: datetime | None, connector: MTurkMarketplace, actor: Actor) -> int:
    """Expire the HIT on MTurk now (``open_until`` None) or keep it open until then, record it, and sync its
    escrow: MTurk returns the unfilled slots' money on expiry and takes it again on resume, so do we.
    Returns how many escrow rows changed."""
    external_id = str(hit.external_id)
    if open_until is None:
        connector.expire(external_id)
    else:
        connector.set_expiration(external_id, open_until)
    MTurkHit.objects.filter(hit_id=hit.pk).update(expires_at=open_until or timezone.now(), paused=open_until is None)
    return sync_hit_escrow(hit=hit, remote=connector.get_hit(external_id), actor=actor).changed


@dataclass
class ReconcileResult:
    remote: int = 0
    adopted: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    foreign: int = 0
    escrow_changed: int = 0  # our HITs whose unfilled slots were released or committed again
    reopened: list[str] = field(default_factory=list)  # HITs of a resumed job that MTurk still had expired
    extended: list[str] = field(default_factory=list)  # HITs with an extension booked from MTurk's count


def _uuid(annotation: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(annotation)
    except ValueError:
        return None


def _set_expiry_while(
    hit: Hit,
    state: str,
    open_until: datetime | None,
    connector: MTurkMarketplace,
    actor: Actor,
    action: str,
    after: dict[str, str],
) -> int | None:
    """``_set_expiry`` and its audit event ``action``, only while ``hit``'s job is still in ``state``; None
    when it has moved on, or when the job's row is locked right now (left to the next reconcile). The job's
    state is read under the Hit's and the job's row locks, held over the MTurk call: a pause or resume
    meanwhile waits, and its own call, queued on its commit, comes after this one. The job's lock is not
    waited for: the reconcile comes back anyway, and the few transactions that still lock Hits after the
    job's row (an import into a running job re-prioritising its Hits) would deadlock with it."""
    try:
        with transaction.atomic():
            Hit.objects.select_for_update().filter(pk=hit.pk).values_list("pk", flat=True).first()
            job_state = Job.objects.select_for_update(nowait=True).values_list("state", flat=True).get(pk=hit.job_id)
            if job_state != state:
                return None
            changed = _set_expiry(hit, open_until=open_until, connector=connector, actor=actor)
            record_audit_event(
                actor=actor, action=action, object_type="hit", object_id=hit.pk, after={**after, "job": hit.job_id}
            )
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise  # a lost connection, say: not a row that is busy
        logger.info("HIT of job %s left to the next reconcile: its job is being changed (%s)", hit.job_id, exc)
        return None
    return changed


def _resumed_while_mturk_was_not_told(hit: Hit | None, hit_id: str) -> bool:
    """Our HIT, expired by a pause, of a job that runs again, with work still wanted: its resume never reached
    MTurk. A HIT whose lifetime simply ended is not ``paused`` and stays expired."""
    if hit is None or hit.external_id != hit_id or hit.job.state != JobState.PUBLISHED:
        return False
    if hit.state in (HitState.COMPLETE, HitState.CANCELLED):
        return False
    info = getattr(hit, "mturk", None)
    return info is not None and info.paused and info.deleted_at is None


def _lost_extension(hit: Hit | None, remote: RemoteHit) -> TypeGuard[Hit]:
    """MTurk holds more assignments of our recorded HIT than we want (read from the listing, no query)."""
    return hit is not None and hit.external_id == remote.hit_id and remote.max_assignments > hit.assignments_wanted


def reconcile_mturk_hits(*, actor: Actor, connector: MTurkMarketplace | None = None) -> ReconcileResult:
    """ListHITs (every page) against our rows. A HIT whose annotation is one of our Hits but which we never
    recorded is adopted (a crash older than the token's 24 hours); one whose annotation is a UUID we do not
    have, a second HIT for a Hit already recorded, or one of a cancelled Hit is expired. HITs without a UUID
    annotation belong to someone else on the account and are left alone. A live HIT of a paused job is
    expired (the pause's own call to MTurk may never have run). Each recorded HIT's escrow is synced from
    the same listing (``sync_hit_escrow``), whoever expired or extended it. Likewise a HIT a pause expired,
    of a job that has been resumed since, is opened again (the resume's call may never have run). Before any
    of that, a HIT MTurk lists with more assignments than we want has the difference booked
    (``adopt_lost_extension``): an extension whose booking was lost, even if nobody asks for more again."""
    connector = mturk_connector(connector)
    result = ReconcileResult()
    remote = list(connector.list_hits())
    result.remote = len(remote)
    keys = [key for key in (_uuid(r.annotation) for r in remote) if key is not None]
    ours = {str(h.uuid): h for h in Hit.objects.filter(uuid__in=keys).select_related("job", "mturk")}
    now = timezone.now()
    for remote_hit in remote:
        key = _uuid(remote_hit.annotation)
        if key is None:
            result.foreign += 1
            continue
        hit = ours.get(str(key))
        live = remote_hit.expires_at is None or remote_hit.expires_at > now
        if _lost_extension(hit, remote_hit) and adopt_lost_extension(hit=hit, remote=remote_hit, actor=actor).slots:
            result.extended.append(remote_hit.hit_id)  # booked before the escrow below looks at its slots
        if hit is not None and hit.external_id is None and hit.state != HitState.CANCELLED:
            published = PublishedHit(
                hit_id=str(hit.uuid), external_id=remote_hit.hit_id, expires_at=remote_hit.expires_at, adopted=True
            )
            if not MTurkHit.objects.filter(hit_id=hit.pk).exists():
                MTurkHit.objects.create(
                    hit_id=hit.pk,
                    intent_at=now,
                    max_assignments=remote_hit.max_assignments,
                    reward=remote_hit.reward,
                    masters=job_options(hit.job).masters,
                    auto_approval_delay=job_options(hit.job).auto_approval_delay,
                )
            record_published_hit(hit=hit, published=published, hit_type_id=remote_hit.hit_type_id, actor=actor)
            result.adopted.append(remote_hit.hit_id)
        elif live and hit is not None and hit.external_id == remote_hit.hit_id and hit.job.state == JobState.PAUSED:
            # A pause MTurk never heard of (the broker was down when it was asked): expire it now, as pausing does.
            changed = _set_expiry_while(
                hit, JobState.PAUSED, None, connector, actor, "mturk.paused_hit_expired", {"hit_id": remote_hit.hit_id}
            )
            if changed is not None:
                result.escrow_changed += changed
                result.expired.append(remote_hit.hit_id)
        elif live and (hit is None or hit.external_id != remote_hit.hit_id or hit.state == HitState.CANCELLED):
            connector.expire(remote_hit.hit_id)
            with transaction.atomic():
                record_audit_event(
                    actor=actor,
                    action="mturk.orphan_expired",
                    object_type="hit",
                    object_id=hit.pk if hit else remote_hit.annotation,
                    after={"hit_id": remote_hit.hit_id},
                )
            result.expired.append(remote_hit.hit_id)
        elif not live and _resumed_while_mturk_was_not_told(hit, remote_hit.hit_id):
            # A resume MTurk never heard of: open the HIT again for the job's lifetime, as resuming does.
            assert hit is not None
            open_until = now + job_options(hit.job).lifetime
            after = {"hit_id": remote_hit.hit_id, "expires_at": open_until.isoformat()}
            changed = _set_expiry_while(
                hit, JobState.PUBLISHED, open_until, connector, actor, "mturk.resumed_hit_reopened", after
            )
            if changed is not None:
                result.escrow_changed += changed
                result.reopened.append(remote_hit.hit_id)
        elif hit is not None and hit.external_id == remote_hit.hit_id:
            result.escrow_changed += sync_hit_escrow(hit=hit, remote=remote_hit, actor=actor, now=now).changed
    return result


def delete_done_mturk_hits(
    *, actor: Actor, connector: MTurkMarketplace | None = None, grace: timedelta = timedelta(days=1)
) -> int:
    """DeleteHIT for HITs that are finished on our side (complete or cancelled, expired a while ago, no
    submitted work left unreviewed): keeps the account's HIT list short. MTurk keeps the data 120 days."""
    connector = mturk_connector(connector)
    cutoff = timezone.now() - grace
    done = (
        MTurkHit.objects.filter(deleted_at__isnull=True, published_at__isnull=False)
        .filter(
            Q(hit__state=HitState.COMPLETE) | Q(hit__state=HitState.CANCELLED) | Q(hit__job__state=JobState.COMPLETED)
        )
        .filter(Q(expires_at__lt=cutoff) | Q(hit__state=HitState.COMPLETE))
        .exclude(hit__assignments__state=AssignmentState.SUBMITTED)
        .select_related("hit")
    )
    deleted = 0
    for info in done:
        # The last look at the HIT: what it still holds for unfilled slots is released before it goes.
        sync_hit_escrow(hit=info.hit, remote=connector.get_hit(str(info.hit.external_id)), actor=actor)
        connector.delete_hit(str(info.hit.external_id))
        with transaction.atomic():
            MTurkHit.objects.filter(pk=info.pk).update(deleted_at=timezone.now())
            record_audit_event(
                actor=actor, action="mturk.hit_deleted", object_type="hit", object_id=info.hit_id, after={}
            )
        deleted += 1
    return deleted


@dataclass
class Extensions:
    """What :func:`extend_mturk_hits_within_budget` did: HITs extended, HITs MTurk (or our checks) refused,
    and the budget refusal that stopped it, if one did (the HITs after it were not tried)."""

    extended: int = 0
    refused: int = 0
    budget: BudgetExceeded | None = None
    already: int = 0  # HITs the same request (``request_key``) had extended before


def extend_mturk_hits_within_budget(
    *,
    job: Job,
    hits: Iterable[Hit],
    extra: int,
    actor: Actor,
    key: str,
    reason: str,
    connector: MTurkMarketplace | None = None,
    request_key: str | None = None,
) -> Extensions:
    """``extra`` more assignments on each of ``hits``, one HIT at a time: reserve the worst-case cost
    (key ``job:<job>:<key>:<hit>:<new wanted>``, so a retry of an attempt that did not commit reserves once)
    and call CreateAdditionalAssignmentsForHIT in one transaction. A HIT that is refused is skipped; the
    first budget refusal stops the pass. With ``request_key`` (a form's nonce, a task id) the reservation
    is keyed on the request instead, and a HIT that request already extended is passed over (not counted)."""
    connector = mturk_connector(connector)
    done = Extensions()
    for hit in hits:
        target = request_key if request_key is not None else hit.assignments_wanted + extra
        try:
            with transaction.atomic():
                # The HIT's row before the job's row (the reservation's), the lock order of every path: an
                # approval or escrow sync holding the HIT and waiting for the job would deadlock with the other.
                Hit.objects.select_for_update().filter(pk=hit.pk).values_list("pk", flat=True).first()
                _, created = reserve_budget(
                    job=job,
                    amount=hits_cost(job, hit_count=1, extra_per_hit=extra),
                    key=f"job:{job.pk}:{key}:{hit.pk}:{target}",
                    actor=actor,
                    reason=reason,
                )
                if request_key is not None and not created:
                    done.already += 1
                    continue
                # GetHIT is read here, under the HIT's and the job's row locks: a read from before could miss
                # an extension another request lost meanwhile, and this one would then buy on top of it
                extend_mturk_hit(hit=hit, additional=extra, actor=actor, connector=connector)
        except BudgetExceeded as exc:
            done.budget = exc
            break
        except (ServiceError, MarketplaceError):
            done.refused += 1
            continue
        done.extended += 1
    return done
