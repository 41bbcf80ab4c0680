"""Quality: grading gold answers, keeping worker scores, and the job's block policy.

Runs inside the submission's transaction, only for gold Hits, so the hot path of ordinary answers does
not pay for it. Every automatic block writes an audit event with its evidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, OuterRef, Sum
from django.utils import timezone

from qualification.grading import grade_label
from qualification.selectors import worker_grant_scores
from qualification.services import grant_qualification
from tasks.models import (
    Answer,
    Assignment,
    AssignmentFlag,
    AssignmentGoldItem,
    AssignmentState,
    GoldGrade,
    GoldMissAction,
    Hit,
    HitItem,
    HitState,
    Job,
    JobBlock,
    JobState,
    WorkerJobScore,
)
from tasks.quality_selectors import get_dependence_evidence
from tasks.selectors import get_assignment_gold_answers
from tasks.services.pool import assignment_state_event, release_slots
from tasks.services.review import reject_assignment
from tasks.services.speed import refresh_speed_scores  # noqa: F401  (re-exported for its callers)
from workforce.audit import Actor, QueuedEvent, queue_audit_events, record_audit_event
from workforce.models import Marketplace, Worker
from workforce.scoring import (
    BLOCK_ODDS,
    DEPENDENCE_BLOCK_ODDS,
    Accuracy,
    chance_accuracy,
    gold_accuracy,
    gold_evidence,
)

POLICY = Actor.system("block policy")
GOLD_MISS_POLICY = Actor.system("missed gold policy")
MISSED_GOLD = "all gold answers wrong"
MISSED_GOLD_REASON = "every gold answer in the assignment was wrong"
BULK_BATCH = 2000


def _grade(job: Job, value: Any, expected: Any) -> float:
    if job.is_shapes:
        from tasks.services.shapes import grade_shape_answer

        return grade_shape_answer(job.task_kind, value, expected)
    return grade_label(job.task_kind, value, expected, partial=True)


def grade_gold_answers(*, assignment: Assignment, job: Job, worker: Worker, now: datetime) -> Accuracy:
    """Grade the assignment's answers to gold items, refresh the worker's score, apply the block policy."""
    gold = get_assignment_gold_answers(assignment)  # the Hit's gold and the gold placed on this page
    answers = Answer.objects.filter(assignment=assignment, item_id__in=list(gold)).values_list("id", "item_id", "value")
    GoldGrade.objects.bulk_create(
        [
            GoldGrade(
                answer_id=answer_id,
                job_id=job.pk,
                worker_id=worker.pk,
                item_id=item_id,
                score=_grade(job, value, gold[item_id]),
                created_at=now,
            )
            for answer_id, item_id, value in answers
        ]
    )
    if job.gold_miss_action != GoldMissAction.OFF:
        act_on_missed_gold(assignment=assignment, job=job, worker=worker, now=now)
    accuracy, right = refresh_gold_score(job=job, worker=worker, now=now)
    _apply_gold_policies(job=job, worker=worker, accuracy=accuracy, right=right, now=now)
    return accuracy


def grade_gold_in_bulk(*, job: Job, assignment_ids: Sequence[int], now: datetime) -> int:
    """``grade_gold_answers`` for many recorded assignments at once (results files, marketplace polls).

    The same number of queries whatever the number of assignments: their gold answers in one read, the
    grades in one insert, missed-gold flags and their (queued) audit events in one insert each, every
    worker's score in one grouped read and one upsert. Per row only what must be: a rejection for missed
    gold (the marketplace hears of each one), and the block and trust policies once per worker, after the
    whole batch is graded. Returns the number of grades written.
    """
    on_page = Exists(HitItem.objects.filter(hit_id=OuterRef("assignment__hit_id"), item_id=OuterRef("item_id")))
    placed = Exists(
        AssignmentGoldItem.objects.filter(assignment_id=OuterRef("assignment_id"), item_id=OuterRef("item_id"))
    )
    rows = list(
        Answer.objects.filter(assignment_id__in=list(assignment_ids), item__is_gold=True)
        .filter(on_page | placed)  # the gold its page showed, as ``get_assignment_gold_answers`` reads it
        .order_by("assignment__submitted_at", "assignment_id", "id")
        .values_list("id", "assignment_id", "worker_id", "item_id", "value", "item__gold_answer")
    )
    if not rows:
        return 0
    grades = [
        GoldGrade(answer_id=a, job_id=job.pk, worker_id=w, item_id=i, score=_grade(job, v, g), created_at=now)
        for a, _, w, i, v, g in rows
    ]
    GoldGrade.objects.bulk_create(grades, batch_size=BULK_BATCH)
    by_assignment: dict[int, list[GoldGrade]] = {}
    for row, grade in zip(rows, grades, strict=True):
        by_assignment.setdefault(row[1], []).append(grade)
    _act_on_missed_gold_in_bulk(
        job=job, missed={a: g for a, g in by_assignment.items() if all(x.score <= 0 for x in g)}, now=now
    )
    scores = refresh_gold_scores(job=job, worker_ids=sorted({g.worker_id for g in grades}), now=now)
    for worker in Worker.objects.filter(pk__in=list(scores)).order_by("pk"):
        accuracy, right = scores[worker.pk]
        _apply_gold_policies(job=job, worker=worker, accuracy=accuracy, right=right, now=now)
    return len(grades)


def _apply_gold_policies(*, job: Job, worker: Worker, accuracy: Accuracy, right: float, now: datetime) -> None:
    """After a worker's gold score changed: block them from the job, or grant trust, as the job says."""
    decision = _block_decision(job=job, worker=worker, accuracy=accuracy, right=right)
    if decision is not None:
        block_worker(
            job=job,
            worker=worker,
            actor=POLICY,
            reason=f"answers independent of the items, not at {job.block_below_accuracy:.0%}",
            evidence=decision,
        )
    else:
        _grant_trust_if_earned(job=job, worker=worker, accuracy=accuracy, now=now)


def _block_decision(*, job: Job, worker: Worker, accuracy: Accuracy, right: float) -> dict[str, Any] | None:
    """The evidence for blocking ``worker`` from ``job``, or None when the policy does not block.

    A sequential test (Wald) between "the worker's answers do not depend on the item" and "the worker is
    as reliable as the job's honest floor" (``block_below_accuracy``): block once the evidence is
    ``odds`` times likelier under the first, after at least ``block_after_gold`` gold answers. Single-label
    jobs weigh gold and peer agreement together, answer by answer against the worker's own label mix
    (``tasks.quality_selectors``), at 50:1 (``DEPENDENCE_BLOCK_ODDS``); multi-label jobs weigh gold alone
    against a uniform chance rate at 14:1 (``BLOCK_ODDS``). The likelihood ratio is a martingale for a worker
    at the floor, so such a worker is ever blocked with probability at most 1/odds (Ville's inequality: 2%
    and 7%), a worker above the floor less (a reliable worker, far less); workers below the floor have no
    such bound.
    """
    if job.block_below_accuracy is None or accuracy.n < job.block_after_gold:
        return None
    summary: dict[str, Any] = {
        "gold_answers": accuracy.n,
        "gold_right": round(right, 4),
        "accuracy": round(accuracy.mean, 4),
        "interval": [round(accuracy.low, 4), round(accuracy.high, 4)],
        "threshold": job.block_below_accuracy,
        "min_gold": job.block_after_gold,
    }
    dependence = get_dependence_evidence(job=job, worker=worker)
    if dependence is not None:
        log_ratio, odds = dependence.log_ratio, DEPENDENCE_BLOCK_ODDS
        summary |= dependence.as_dict()
    else:
        evidence = gold_evidence(
            right, accuracy.n, n_labels=len(job.labels), floor=job.block_below_accuracy, min_gold=job.block_after_gold
        )
        log_ratio, odds = evidence.log_ratio, BLOCK_ODDS
        summary["chance"] = round(chance_accuracy(len(job.labels)), 4)
    if log_ratio < math.log(odds):
        return None
    summary["log_likelihood_ratio"] = round(log_ratio, 4)
    summary["block_at"] = round(math.log(odds), 4)
    return summary


def act_on_missed_gold(
    *,
    assignment: Assignment,
    job: Job,
    worker: Worker,
    now: datetime,
    grades: list[tuple[int, float]] | None = None,
) -> str | None:
    """Flag or reject (per ``job.gold_miss_action``) a submitted assignment whose gold answers are all wrong.

    Returns the action taken (``flag`` / ``reject``) or None. Partly right multi-label answers count as
    not wrong. The audit event carries the evidence: the assignment's gold grades, as ``(item id, score)``
    pairs (read here unless the caller has them).
    """
    if grades is None:
        grades = list(GoldGrade.objects.filter(answer__assignment=assignment).values_list("item_id", "score"))
    if job.gold_miss_action == GoldMissAction.OFF or not grades or any(score > 0 for _, score in grades):
        return None
    evidence = _missed_gold_evidence(job, [item_id for item_id, _ in grades])
    if job.gold_miss_action == GoldMissAction.REJECT:
        feedback = f"All {len(grades)} check question(s) in this task were answered wrongly."
        reject_assignment(assignment=assignment, actor=GOLD_MISS_POLICY, feedback=feedback)
        action = "assignment.rejected_for_missed_gold"
    else:
        _, created = AssignmentFlag.objects.get_or_create(
            assignment=assignment,
            reason=MISSED_GOLD,
            defaults={"job": job, "worker": worker, "evidence": evidence, "created_at": now},
        )
        if not created:
            return None
        action = "assignment.flagged"
    record_audit_event(
        actor=GOLD_MISS_POLICY,
        action=action,
        object_type="assignment",
        object_id=assignment.pk,
        after={"job": job.pk, "worker": worker.pk, "reason": MISSED_GOLD, "evidence": evidence},
        reason=MISSED_GOLD_REASON,
    )
    return str(job.gold_miss_action)


def _missed_gold_evidence(job: Job, item_ids: list[int]) -> dict[str, Any]:
    return {
        "gold_answers": len(item_ids),
        "gold_right": 0,
        "gold_items": sorted(item_ids),
        "policy": job.gold_miss_action,
    }


def _act_on_missed_gold_in_bulk(*, job: Job, missed: dict[int, list[GoldGrade]], now: datetime) -> None:
    """``act_on_missed_gold`` for many graded assignments: flags in one insert, rejections one by one. Work that
    is already reviewed (history imported approved or rejected from a marketplace) cannot be rejected here: with
    ``reject`` it is flagged instead, so a reviewer sees it and the import that brought it goes through."""
    if job.gold_miss_action == GoldMissAction.OFF or not missed:
        return
    if job.gold_miss_action == GoldMissAction.REJECT:
        reviewed: dict[int, list[GoldGrade]] = {}
        for assignment in Assignment.objects.filter(pk__in=list(missed)).select_related("worker").order_by("pk"):
            if assignment.state != AssignmentState.SUBMITTED:
                reviewed[assignment.pk] = missed[assignment.pk]
                continue
            known = [(g.item_id, g.score) for g in missed[assignment.pk]]
            act_on_missed_gold(assignment=assignment, job=job, worker=assignment.worker, now=now, grades=known)
        missed = reviewed
        if not missed:
            return
    already = set(
        AssignmentFlag.objects.filter(assignment_id__in=list(missed), reason=MISSED_GOLD).values_list(
            "assignment_id", flat=True
        )
    )
    flags = [
        AssignmentFlag(
            assignment_id=assignment_id,
            job=job,
            worker_id=grades[0].worker_id,
            reason=MISSED_GOLD,
            evidence=_missed_gold_evidence(job, [g.item_id for g in grades]),
            created_at=now,
        )
        for assignment_id, grades in sorted(missed.items())
        if assignment_id not in already
    ]
    AssignmentFlag.objects.bulk_create(flags, batch_size=BULK_BATCH, ignore_conflicts=True)
    queue_audit_events(
        [
            QueuedEvent(
                GOLD_MISS_POLICY,
                "assignment.flagged",
                "assignment",
                flag.assignment_id,
                after={"job": job.pk, "worker": flag.worker_id, "reason": MISSED_GOLD, "evidence": flag.evidence},
                reason=MISSED_GOLD_REASON,
            )
            for flag in flags
        ]
    )


def _grant_trust_if_earned(*, job: Job, worker: Worker, accuracy: Accuracy, now: datetime) -> None:
    """Grant the job's "trusted" qualification once we are confident the worker's accuracy clears the bar."""
    if job.trusted_test_id is None or job.trusted_min_accuracy is None or accuracy.n < job.block_after_gold:
        return
    if accuracy.low < job.trusted_min_accuracy or job.trusted_test_id in worker_grant_scores(worker):
        return
    grant_qualification(
        worker=worker,
        test=job.trusted_test,  # type: ignore[arg-type]
        score=round(100 * accuracy.mean, 2),
        actor=Actor.system("trust policy"),
        now=now,
    )


def refresh_gold_score(*, job: Job, worker: Worker, now: datetime) -> tuple[Accuracy, float]:
    """Recompute the worker's gold score on ``job``: (posterior accuracy, sum of grades)."""
    return refresh_gold_scores(job=job, worker_ids=[worker.pk], now=now)[worker.pk]


def refresh_gold_scores(*, job: Job, worker_ids: Sequence[int], now: datetime) -> dict[int, tuple[Accuracy, float]]:
    """Recompute these workers' gold scores on ``job`` in one grouped read and one upsert, by worker id."""
    totals = dict.fromkeys(worker_ids, (0, 0.0))
    rows = (
        GoldGrade.objects.filter(job=job, worker_id__in=list(worker_ids))
        .values("worker_id")
        .annotate(n=Count("id"), right=Sum("score"))
        .order_by()
        .values_list("worker_id", "n", "right")
    )
    for worker_id, n, right in rows:
        totals[worker_id] = (int(n), float(right or 0.0))
    scores = {w: (gold_accuracy(right, n), right) for w, (n, right) in totals.items()}
    WorkerJobScore.objects.bulk_create(
        [
            WorkerJobScore(
                job=job,
                worker_id=w,
                gold_answers=accuracy.n,
                gold_score=right,
                accuracy=accuracy.mean,
                accuracy_low=accuracy.low,
                accuracy_high=accuracy.high,
                updated_at=now,
            )
            for w, (accuracy, right) in scores.items()
        ],
        update_conflicts=True,
        unique_fields=["job", "worker"],
        update_fields=["gold_answers", "gold_score", "accuracy", "accuracy_low", "accuracy_high", "updated_at"],
        batch_size=BULK_BATCH,
    )
    return scores


def block_worker(
    *, job: Job, worker: Worker, actor: Actor, reason: str, evidence: dict[str, Any] | None = None
) -> JobBlock | None:
    """Bar ``worker`` from ``job``: end their leases and return their unreviewed internal-pool work to the pool.

    Idempotent: a worker already blocked from the job stays blocked once (returns None). Only work still
    submitted when its row is locked goes back: an approval or rejection that commits first keeps its
    assignment (and its pay), so no Hit reopens for an answer that is already paid. Work on a remote
    marketplace stays submitted for review: the marketplace holds its slot, and the next collect would
    report it submitted again.
    """
    now = timezone.now()
    with transaction.atomic():
        if JobBlock.objects.filter(job=job, worker=worker, lifted_at__isnull=True).exists():
            return None
        try:
            with transaction.atomic():  # a block written at the same moment wins; this call is then a no-op
                block = JobBlock.objects.create(
                    job=job, worker=worker, reason=reason, evidence=evidence or {}, created_at=now
                )
        except IntegrityError:
            return None
        # Lock every assignment this changes before any Hit (the lock order: assignments, Hits, Job).
        leases = list(
            Assignment.objects.select_for_update(of=("self",))
            .filter(job=job, worker=worker, state=AssignmentState.ACCEPTED)
            .order_by("pk")
            .values_list("id", "hit_id")
        )
        # (their submitted answers on ordinary Hits go back to the pool: each Hit wants one more answer)
        returned = list(
            Assignment.objects.select_for_update(of=("self",))
            .filter(
                job=job,
                worker=worker,
                state=AssignmentState.SUBMITTED,
                marketplace=Marketplace.INTERNAL,
                hit__is_gold=False,
            )
            .order_by("pk")
            .values_list("id", "hit_id")
        )
        # Their leases end now, freeing their slots.
        if leases:
            Assignment.objects.filter(pk__in=[pk for pk, _ in leases]).update(  # locked above, still accepted
                state=AssignmentState.EXPIRED, lease_expires_at=now
            )
            release_slots([hit_id for _, hit_id in leases])
        reopened = 0
        if returned:
            Assignment.objects.filter(pk__in=[pk for pk, _ in returned]).update(  # locked above, still submitted
                state=AssignmentState.RETURNED, reviewed_at=now
            )
            Hit.objects.filter(pk__in=[hit_id for _, hit_id in returned]).update(
                slots_taken=F("slots_taken") - 1,
                assignments_submitted=F("assignments_submitted") - 1,
                state=HitState.OPEN,
            )
            reopened = Job.objects.filter(pk=job.pk, state=JobState.COMPLETED).update(
                state=JobState.PUBLISHED, completed_at=None
            )
        record_audit_event(
            actor=actor,
            action="worker.blocked_from_job",
            object_type="worker",
            object_id=worker.pk,
            before={"job_state": JobState.COMPLETED.value} if reopened else None,
            after={
                "job": job.pk,
                "reason": reason,
                "evidence": evidence or {},
                "returned_assignments": len(returned),
                **({"job_state": JobState.PUBLISHED.value} if reopened else {}),
            },
        )
        # What happened to each of their assignments, in one write.
        why = f"Worker blocked from job {job.pk}: {reason}"
        queue_audit_events(
            [
                *(
                    assignment_state_event(actor, pk, AssignmentState.ACCEPTED, AssignmentState.EXPIRED, why)
                    for pk, _ in leases
                ),
                *(
                    assignment_state_event(actor, pk, AssignmentState.SUBMITTED, AssignmentState.RETURNED, why)
                    for pk, _ in returned
                ),
            ]
        )
    return block
