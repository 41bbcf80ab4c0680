"""Managing a job's gold set: promoting confident consensus labels to gold questions."""

from __future__ import annotations

from django.db import transaction

from tasks.models import ConsensusLabel, Item, Job, JobState
from tasks.services import hits as hit_services
from tasks.services.errors import ServiceError
from workforce.audit import Actor, QueuedEvent, queue_audit_events, record_audit_event

MIN_PROMOTION_CONFIDENCE = 0.9


def promote_consensus_to_gold(
    *, job: Job, item_ids: list[int], actor: Actor, min_confidence: float = MIN_PROMOTION_CONFIDENCE
) -> int:
    """Make the given items gold questions whose known answer is their consensus label.

    Only items whose consensus is at least ``min_confidence`` are promoted; each gets a gold Hit so
    workers who have not seen it may get it. Returns how many items were promoted.
    """
    if not 0.5 <= min_confidence <= 1:
        raise ServiceError("The minimum confidence must be between 0.5 and 1.")
    with transaction.atomic():
        rows = list(
            ConsensusLabel.objects.select_for_update()
            .filter(job=job, item_id__in=item_ids, confidence__gte=min_confidence, item__is_gold=False)
            .values_list("item_id", "value", "confidence")
        )
        if not rows:
            raise ServiceError(
                f"None of the selected items has a consensus of at least {min_confidence:.0%} confidence "
                "that is not gold already."
            )
        Item.objects.bulk_update(
            [Item(pk=item_id, is_gold=True, gold_answer=value) for item_id, value, _ in rows],
            ["is_gold", "gold_answer"],
            batch_size=1000,
        )
        promoted = [item_id for item_id, _, _ in rows]
        hit_services.build_gold_hits(job=job, item_ids=promoted, open_now=job.state == JobState.PUBLISHED)
        # Each item's own history shows it became gold (queued, then sealed by the job event below).
        queue_audit_events(
            [
                QueuedEvent(
                    actor=actor,
                    action="item.gold_set",
                    object_type="item",
                    object_id=item_id,
                    before={"is_gold": False},
                    after={"is_gold": True, "gold_answer": value, "consensus_confidence": round(confidence, 4)},
                )
                for item_id, value, confidence in rows
            ]
        )
        record_audit_event(
            actor=actor,
            action="gold.promoted",
            object_type="job",
            object_id=job.pk,
            after={
                "items": promoted,
                "answers": {str(i): v for i, v, _ in rows},
                "confidence": {str(i): round(c, 4) for i, _, c in rows},
            },
        )
    return len(promoted)
