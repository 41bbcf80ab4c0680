"""Read-side queries for pages, admin and API. Each is set-based: no query per row."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.urls import reverse
from django.utils import timezone

from qualification.gold_placement import place_on_page
from qualification.policies import required_test_ids, unmet_requirements
from qualification.selectors import get_test_names, unmet_requirements_for_worker, worker_grant_scores
from tasks.models import (
    Assignment,
    AssignmentGoldItem,
    AssignmentState,
    GoldGrade,
    Hit,
    HitState,
    Item,
    Job,
    JobBlock,
    JobState,
    JobTally,
)
from workforce.models import Marketplace, Worker

PROGRESS_CACHE_SECONDS = 10


@dataclass(frozen=True)
class JobTotals:
    """A job's running totals: its non-gold, not cancelled Hits and its items."""

    hits: int = 0
    hits_complete: int = 0
    answers_wanted: int = 0
    answers_submitted: int = 0
    slots_taken: int = 0
    items: int = 0
    gold_items: int = 0


def list_job_tallies(job_ids: list[int]) -> dict[int, JobTotals]:
    """The jobs' totals from one grouped query over their tally rows (``tasks.models.tallies``)."""
    fields = [f.name for f in dataclasses.fields(JobTotals)]
    sums = {f"sum_{f}": Sum(f) for f in fields}
    rows = JobTally.objects.filter(job_id__in=job_ids).order_by().values("job_id").annotate(**sums)
    totals = dict.fromkeys(job_ids, JobTotals())
    for row in rows:
        totals[row["job_id"]] = JobTotals(**{f: int(row[f"sum_{f}"] or 0) for f in fields})
    return totals


def get_job_totals(job: Job) -> JobTotals:
    return list_job_tallies([job.pk])[job.pk]


@dataclass(frozen=True)
class JobProgress:
    hits: int
    hits_complete: int
    answers_wanted: int
    answers_submitted: int
    open_slots: int

    @property
    def percent(self) -> int:
        return int(100 * self.answers_submitted / self.answers_wanted) if self.answers_wanted else 0


def list_job_progress(job_ids: list[int], *, use_cache: bool = True) -> dict[int, JobProgress]:
    """Progress of several jobs from their tallies (a few rows per job, kept by triggers on the Hits)."""
    key = "job-progress:" + ",".join(map(str, sorted(job_ids)))
    if use_cache and (hit := cache.get(key)) is not None:
        return hit
    result = {job_id: JobProgress(0, 0, 0, 0, 0) for job_id in job_ids}
    for job_id, t in list_job_tallies(job_ids).items():
        result[job_id] = JobProgress(
            hits=t.hits,
            hits_complete=t.hits_complete,
            answers_wanted=t.answers_wanted,
            answers_submitted=t.answers_submitted,
            open_slots=t.answers_wanted - t.slots_taken,
        )
    if use_cache:
        cache.set(key, result, PROGRESS_CACHE_SECONDS)
    return result


def get_job_progress(job: Job, *, use_cache: bool = False) -> JobProgress:
    return list_job_progress([job.pk], use_cache=use_cache)[job.pk]


@dataclass(frozen=True)
class WorkerJobCard:
    job: Job
    progress: JobProgress
    my_submitted: int
    lease_expires_at: datetime | None
    unmet: list[str]
    open_to_me: bool  # an open Hit the worker has not worked yet
    blocked: bool  # the job's block policy (or an ops manager) stopped the worker here


def count_approved_assignments(worker: Worker) -> int:
    return Assignment.objects.filter(worker=worker, state=AssignmentState.APPROVED).count()


def _needs_approved_count(requirements: list[dict[str, Any]]) -> bool:
    return any(isinstance(r, dict) and r.get("kind") == "approved_assignments" for r in requirements)


def unmet_job_requirements(job: Job, worker: Worker) -> list[str]:
    """Sentences for the job's requirements the worker does not meet (no query when it has none)."""
    if not job.requirements:
        return []
    approved = count_approved_assignments(worker) if _needs_approved_count(job.requirements) else 0
    return unmet_requirements_for_worker(worker=worker, requirements=job.requirements, approved_assignments=approved)


def list_jobs_for_worker(worker: Worker) -> list[WorkerJobCard]:
    """Published internal-pool jobs, with overall progress and the worker's own counts."""
    not_mine = ~Exists(Assignment.objects.filter(worker_id=worker.pk, hit_id=OuterRef("pk")))
    open_to_me = Exists(Hit.objects.filter(not_mine, job_id=OuterRef("pk"), state=HitState.OPEN, is_gold=False))
    jobs = list(
        Job.objects.filter(state=JobState.PUBLISHED, marketplace=Marketplace.INTERNAL)
        .annotate(
            open_to_me=open_to_me,
            blocked=Exists(JobBlock.objects.filter(worker_id=worker.pk, job_id=OuterRef("pk"), lifted_at__isnull=True)),
        )
        .order_by("-published_at", "-id")
    )
    if not jobs:
        return []
    ids = [j.pk for j in jobs]
    progress = list_job_progress(ids)
    mine = (
        Assignment.objects.filter(worker=worker, job_id__in=ids)
        .values("job_id")
        .annotate(
            done=Count(
                "id",
                filter=Q(state__in=[AssignmentState.SUBMITTED, AssignmentState.APPROVED, AssignmentState.REJECTED]),
            ),
        )
    )
    done = {row["job_id"]: row["done"] for row in mine}
    leases = dict(
        Assignment.objects.filter(
            worker=worker, job_id__in=ids, state=AssignmentState.ACCEPTED, lease_expires_at__gt=timezone.now()
        ).values_list("job_id", "lease_expires_at")
    )
    # Requirements: the worker's grants and test names are read once for the whole list.
    all_requirements = [r for j in jobs for r in (j.requirements or [])]
    grants = worker_grant_scores(worker) if all_requirements else {}
    names = get_test_names(required_test_ids(all_requirements)) if all_requirements else {}
    approved = count_approved_assignments(worker) if _needs_approved_count(all_requirements) else 0
    return [
        WorkerJobCard(
            job=j,
            progress=progress[j.pk],
            my_submitted=done.get(j.pk, 0),
            lease_expires_at=leases.get(j.pk),
            unmet=unmet_requirements(
                j.requirements,
                grants=grants,
                is_blocked=worker.is_blocked,
                approved_assignments=approved,
                test_names=names,
            )
            if j.requirements
            else [],
            open_to_me=j.open_to_me,
            blocked=j.blocked,
        )
        for j in jobs
    ]


def list_hit_items(hit_id: int) -> list[Item]:
    """The items of one Hit, in display order."""
    return list(Item.objects.filter(hit_items__hit_id=hit_id).order_by("hit_items__position").only("id", "payload"))


def list_page_items(assignment: Assignment) -> list[Item]:
    """The items of a worker's page, in order: the Hit's own items and the gold placed on this page
    (``AssignmentGoldItem``), alike. Each gets ``place`` (1 is first): the only reference to an item a
    worker's page or its answers carry, so ids (gold items are numbered apart) reveal nothing."""
    own = list_hit_items(assignment.hit_id)
    placed = [
        (row.position, row.item)
        for row in AssignmentGoldItem.objects.filter(assignment_id=assignment.pk)
        .select_related("item")
        .only("position", "item__id", "item__payload")
    ]
    page = place_on_page(own, placed)
    for place, item in enumerate(page, start=1):
        item.place = place  # type: ignore[attr-defined]
    return page


def list_unseen_gold_ids(*, job: Job, worker: Worker) -> list[int]:
    """The job's gold items never placed on one of ``worker``'s pages, in id order."""
    return list(
        Item.objects.filter(job_id=job.pk, is_gold=True)
        .exclude(gold_placements__worker_id=worker.pk)
        .order_by("id")
        .values_list("id", flat=True)
    )


def get_assignment_gold_answers(assignment: Assignment) -> dict[int, Any]:
    """The known answers of the gold items an assignment's page showed: item id -> gold answer."""
    gold = dict(Item.objects.filter(hit_items__hit_id=assignment.hit_id, is_gold=True).values_list("id", "gold_answer"))
    gold.update(
        Item.objects.filter(gold_placements__assignment_id=assignment.pk, is_gold=True).values_list("id", "gold_answer")
    )
    return gold


def task_for_page(assignment: Assignment, items: list[Item]) -> dict[str, Any]:
    """What the labeling page needs to show a task: only the fields a worker may see. Items are referred to
    by their place on the page (``list_page_items``), never by id."""
    from tasks.selectors_predictions import prelabels_for  # it imports this module's models only

    job = assignment.job
    shown = "image_url" if job.is_image else "text"
    prelabels = prelabels_for(job, [item.pk for item in items])
    return {
        "uuid": str(assignment.uuid),
        "url": reverse("task", args=[assignment.uuid]),
        "submit_url": reverse("submit-task", args=[assignment.uuid]),
        "return_url": reverse("return-task", args=[assignment.uuid]),
        "seconds_left": max(0, int((assignment.lease_expires_at - timezone.now()).total_seconds())),
        "items": [
            {"id": item.place, shown: str(item.payload.get(shown, "")), **_prelabel(prelabels, item.pk)}  # type: ignore[attr-defined]
            for item in items
        ],
    }


def _prelabel(prelabels: dict[int, Any], item_id: int) -> dict[str, Any]:
    return {"prelabel": prelabels[item_id]} if item_id in prelabels else {}


def count_worker_submitted(worker: Worker) -> int:
    return Assignment.objects.filter(
        worker=worker, state__in=[AssignmentState.SUBMITTED, AssignmentState.APPROVED, AssignmentState.REJECTED]
    ).count()


def list_training_feedback(assignment: Assignment) -> list[dict[str, Any]]:
    """For a training-mode job: the gold items of this submitted assignment the worker got wrong, by their
    place on the page.

    Empty for any other job, so ordinary submissions never reveal which items were gold.
    """
    job = assignment.job
    if not job.training_mode:
        return []
    missed = list(
        GoldGrade.objects.filter(answer__assignment=assignment, score__lt=1).values_list(
            "item_id", "answer__value", "item__gold_answer"
        )
    )
    if not missed:
        return []
    places = {item.pk: item.place for item in list_page_items(assignment)}  # type: ignore[attr-defined]
    return [
        {"item": places.get(item_id), "your_answer": given, "correct": correct} for item_id, given, correct in missed
    ]


def has_worked_on_job(*, job: Job, worker: Worker) -> bool:
    """Whether the worker ever held an assignment in the job (so its name and state are no news to them)."""
    return Assignment.objects.filter(job=job, worker=worker).exists()
