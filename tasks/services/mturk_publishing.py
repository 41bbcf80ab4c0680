"""Publishing a job's Hits on MTurk, crash-safe.

Per Hit: claim it (``DRAFT`` -> ``PUBLISHING``, an ``MTurkHit`` intent row, committed before any call), call
CreateHITWithHITType with a token derived from the Hit's UUID, then in one transaction record the HIT id
(a conditional update, so a Hit is recorded once) and book the committed reward and fee. A worker that dies
between the call and the record leaves the Hit ``PUBLISHING``; once its intent is older than
``MTURK_PUBLISH_STALE_SECONDS`` another run claims it again and the same token makes MTurk answer "already
exists", so the HIT is adopted, not duplicated. Past the token's 24 hours, reconcile (ListHITs) adopts it.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from tasks.models import Hit, HitState, Job, JobState, MTurkHit
from tasks.services.errors import ServiceError
from tasks.services.mturk_common import (
    MTURK,
    commit_hit_slots,
    hit_spec,
    job_options,
    mturk_connector,
    mturk_reward,
    requirement_list,
    task_page_url,
)
from workforce.audit import Actor, record_audit_event
from workforce.marketplaces.base import MarketplaceError, PublishedHit
from workforce.marketplaces.mturk import MTurkMarketplace
from workforce.marketplaces.mturk_fees import assignment_fee, hit_cost

BATCH = 20
logger = logging.getLogger(__name__)


@dataclass
class PublishResult:
    published: int = 0
    adopted: int = 0
    already_recorded: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)


def _stale_after() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "MTURK_PUBLISH_STALE_SECONDS", 120)))


def check_mturk_balance(*, job: Job, hits: int, connector: MTurkMarketplace) -> None:
    """Refuse when the account's available balance does not cover ``hits`` HITs of ``job`` with fees."""
    if hits <= 0:
        return
    cost = hit_cost(mturk_reward(job), assignments_per_hit=job.answers_per_hit, masters=job_options(job).masters)
    needed = cost.total * hits
    balance = connector.get_balance().available
    if balance < needed:
        raise ServiceError(
            f"The MTurk balance (${balance}) does not cover {hits} HIT(s) of job {job.pk}: "
            f"${needed} with fees (${cost.total} each). Add funds or publish fewer items."
        )


def check_mturk_publishable(*, job: Job, connector: MTurkMarketplace | None = None) -> None:
    """Everything publishing would need, checked before the job changes state (incl. the balance)."""
    connector = mturk_connector(connector)
    options = job_options(job)
    mturk_reward(job)
    requirement_list(job, options, masters_id=connector.config.masters_id)
    if options.question == "external":
        task_page_url()
    elif job.is_shapes:
        raise ServiceError('A drawing job needs the drawing page: set mturk_options "question" to "external".')
    per_hit = max(1, job.items_per_hit)
    regular = job.items.filter(is_gold=False, hit_items__isnull=True).count()
    if per_hit == 1:  # a HIT per gold item
        gold = job.items.filter(is_gold=True, hit_items__isnull=True).count()
        own = 1
    else:  # gold shares the HITs' pages (``tasks.services.hits``): a HIT holds fewer items of its own
        gold = 0
        own = max(1, math.floor(per_hit * (1 - job.gold_rate))) if job.items.filter(is_gold=True).exists() else per_hit
    pending = Hit.objects.filter(job=job, marketplace=MTURK, external_id__isnull=True).count()
    check_mturk_balance(job=job, hits=pending + -(-regular // own) + gold, connector=connector)


def _claim(*, job: Job, now: datetime, limit: int) -> list[Hit]:
    """Take up to ``limit`` Hits to publish: drafts, and claims older than the stale window (crashed runs)."""
    with transaction.atomic():
        hits = list(
            Hit.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(job=job, marketplace=MTURK, external_id__isnull=True)
            .filter(Q(state=HitState.DRAFT) | Q(state=HitState.PUBLISHING, mturk__intent_at__lt=now - _stale_after()))
            .order_by("id")[:limit]
        )
        if not hits:
            return []
        ids = [h.pk for h in hits]
        options = job_options(job)
        Hit.objects.filter(pk__in=ids).update(state=HitState.PUBLISHING)
        MTurkHit.objects.bulk_create(
            [
                MTurkHit(
                    hit_id=pk,
                    intent_at=now,
                    max_assignments=job.answers_per_hit,
                    reward=mturk_reward(job),
                    masters=options.masters,
                    auto_approval_delay=options.auto_approval_delay,
                )
                for pk in ids
            ],
            ignore_conflicts=True,
        )
        MTurkHit.objects.filter(hit_id__in=ids).update(intent_at=now, attempts=F("attempts") + 1)
    return hits


def record_published_hit(*, hit: Hit, published: PublishedHit, hit_type_id: str, actor: Actor) -> bool:
    """Store the HIT id and book its committed cost, once. Returns False when it was recorded before."""
    with transaction.atomic():
        updated = Hit.objects.filter(pk=hit.pk, external_id__isnull=True).update(
            external_id=published.external_id, state=HitState.OPEN
        )
        if not updated:
            current = Hit.objects.filter(pk=hit.pk).values_list("external_id", flat=True).first()
            if current != published.external_id:
                raise MarketplaceError(
                    f"Hit {hit.pk} is recorded as HIT {current} but MTurk also has {published.external_id}.",
                    permanent=True,
                    code="duplicate",
                )
            return False
        now = timezone.now()
        MTurkHit.objects.filter(hit_id=hit.pk).update(
            hit_type_id=hit_type_id or published.group_id,
            published_at=now,
            expires_at=published.expires_at,
            adopted=published.adopted,
            last_error="",
        )
        info = MTurkHit.objects.get(hit_id=hit.pk)
        cost = hit_cost(info.reward, assignments_per_hit=info.max_assignments, masters=info.masters)
        commit_hit_slots(
            hit=hit,
            reward=info.reward,
            fee=assignment_fee(info.reward, assignments_per_hit=info.max_assignments, masters=info.masters),
            slots=range(info.max_assignments),
            reference=published.external_id,
        )
        record_audit_event(
            actor=actor,
            action="mturk.hit_published",
            object_type="hit",
            object_id=hit.pk,
            after={"hit_id": published.external_id, "adopted": published.adopted, "committed": str(cost.total)},
        )
    return True


def _note_failure(hit: Hit, error: MarketplaceError) -> None:
    MTurkHit.objects.filter(hit_id=hit.pk).update(last_error=str(error)[:255])
    if error.permanent:
        Hit.objects.filter(pk=hit.pk, state=HitState.PUBLISHING, external_id__isnull=True).update(state=HitState.DRAFT)


def publish_mturk_hits(
    *, job: Job, actor: Actor, connector: MTurkMarketplace | None = None, limit: int | None = None
) -> PublishResult:
    """Publish the job's unpublished Hits, ``BATCH`` at a time, the balance checked before each batch.
    Temporary failures leave the Hit claimed, for the next run; a permanent one puts it back to draft."""
    connector = mturk_connector(connector)
    result = PublishResult()
    job = Job.objects.get(pk=job.pk)
    if job.state != JobState.PUBLISHED:
        return result
    options = job_options(job)
    requirements = requirement_list(job, options, masters_id=connector.config.masters_id)
    remaining = limit
    while remaining is None or remaining > 0:
        size = BATCH if remaining is None else min(BATCH, remaining)
        unpublished = Hit.objects.filter(
            job=job, marketplace=MTURK, external_id__isnull=True, state__in=[HitState.DRAFT, HitState.PUBLISHING]
        ).count()
        check_mturk_balance(job=job, hits=min(size, unpublished), connector=connector)
        hits = _claim(job=job, now=timezone.now(), limit=size)
        if not hits:
            break
        for hit in hits:
            spec = hit_spec(job=job, hit=hit, options=options, requirements=requirements)
            try:
                hit_type_id = connector.create_hit_type(spec)
                published = connector.publish(spec)
                recorded = record_published_hit(hit=hit, published=published, hit_type_id=hit_type_id, actor=actor)
            except MarketplaceError as error:
                if error.code == "duplicate":  # a second HIT for a recorded Hit (token expired): stop it
                    connector.expire(published.external_id)
                    result.already_recorded += 1
                    continue
                _note_failure(hit, error)
                result.failed.append((hit.pk, str(error)))
                if error.permanent:
                    raise ServiceError(f"MTurk refused Hit {hit.pk}: {error}") from error
                continue
            if not recorded:
                result.already_recorded += 1
            elif published.adopted:
                result.adopted += 1
            else:
                result.published += 1
        if remaining is not None:
            remaining -= len(hits)
    return result


def publish_pending_mturk_hits(*, actor: Actor, connector: MTurkMarketplace | None = None) -> PublishResult:
    """Every published MTurk job's unpublished Hits (Celery beat): picks up work a crashed run left."""
    total = PublishResult()
    jobs = Job.objects.filter(
        state=JobState.PUBLISHED,
        marketplace=MTURK,
        hits__external_id__isnull=True,
        hits__state__in=[HitState.DRAFT, HitState.PUBLISHING],
    ).distinct()
    for job in jobs:
        try:
            part = publish_mturk_hits(job=job, actor=actor, connector=connector)
        except ServiceError as refusal:  # one job's problem (e.g. the balance) does not stop the others
            logger.warning("MTurk publishing of job %s refused: %s", job.pk, refusal)
            total.failed.append((job.pk, str(refusal)))
            continue
        total.published += part.published
        total.adopted += part.adopted
        total.already_recorded += part.already_recorded
        total.failed += part.failed
    return total
