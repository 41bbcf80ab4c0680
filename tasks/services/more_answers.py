"""Asking for more answers: raise the wanted assignments of a job's Hits and reopen them."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from tasks.models import ConsensusLabel, Hit, HitItem, HitState, Job, JobState
from tasks.services.errors import ServiceError
from workforce.audit import Actor, record_audit_event

MAX_ASSIGNMENTS = 50  # the job form's ceiling on redundancy


def request_more_answers(*, job: Job, actor: Actor, extra: int = 1, below_confidence: float | None = None) -> int:
    """Want ``extra`` more answers on each of the job's Hits (only Hits holding an item whose consensus is
    below ``below_confidence``, when given). A completed job is published again. Returns the Hits changed."""
    if not 1 <= extra <= 10:
        raise ServiceError("Ask for between 1 and 10 more answers at a time.")
    if below_confidence is not None and not 0 < below_confidence <= 1:
        raise ServiceError("The confidence bar must be above 0 and at most 1.")
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(pk=job.pk)
        if locked.state not in (JobState.PUBLISHED, JobState.PAUSED, JobState.COMPLETED):
            raise ServiceError(
                f"Job {job.pk} is {locked.state}; more answers can be asked of running or completed jobs."
            )
        hits = Hit.objects.filter(
            job=locked,
            is_gold=False,
            state__in=[HitState.OPEN, HitState.FULL, HitState.COMPLETE],
            assignments_wanted__lte=MAX_ASSIGNMENTS - extra,
        )
        if below_confidence is not None:
            unsure = ConsensusLabel.objects.filter(job=locked, confidence__lt=below_confidence).values("item_id")
            hits = hits.filter(id__in=HitItem.objects.filter(item_id__in=unsure).values("hit_id"))
        changed = hits.update(assignments_wanted=F("assignments_wanted") + extra, state=HitState.OPEN)
        if changed and locked.state == JobState.COMPLETED:
            Job.objects.filter(pk=job.pk).update(state=JobState.PUBLISHED, completed_at=None, updated_at=timezone.now())
        record_audit_event(
            actor=actor,
            action="job.more_answers_requested",
            object_type="job",
            object_id=job.pk,
            after={"extra": extra, "below_confidence": below_confidence, "hits": changed},
        )
    return changed
