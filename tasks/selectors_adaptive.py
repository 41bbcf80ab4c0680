"""Reads about adaptive redundancy on a live job: how far its Hits are from the minimum and the maximum."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, F, IntegerField, Q, Sum, Value
from django.db.models.functions import Coalesce, Greatest

from tasks.models import AdaptiveSkills, ConsensusLabel, Hit, HitState, Job
from tasks.services.adaptive_state import max_answers_of


@dataclass(frozen=True)
class AdaptiveProgress:
    min_answers: int
    max_answers: int
    target: float
    hits_collecting: int
    hits_stopped_early: int
    hits_at_maximum: int
    extra_answers_requested: int
    answers_saved: int
    items_at_target: int
    skills_fitted_at: datetime | None
    skills_answers_at_fit: int
    budget_exhausted_at: datetime | None
    budget_step: float | None = None


def get_adaptive_progress(job: Job) -> AdaptiveProgress | None:
    """The job's adaptive figures (None when it has fixed redundancy), from three small aggregate queries.

    ``answers_saved`` counts, on the complete Hits, the answers a fixed maximum would have asked for on top;
    ``items_at_target`` reads the last consensus (it is as fresh as the last consensus run).
    """
    if job.adaptive_min_answers is None or job.adaptive_target is None:
        return None
    top = max_answers_of(job)
    done = Q(state=HitState.COMPLETE)
    row = (
        Hit.objects.filter(job_id=job.pk, is_gold=False)
        .exclude(state=HitState.CANCELLED)
        .aggregate(
            collecting=Count("id", filter=~done),
            stopped=Count("id", filter=done & Q(assignments_wanted__lt=top)),
            at_max=Count("id", filter=Q(assignments_wanted__gte=top)),
            # above what each Hit was published wanting (the job's figure changes if a pre-label model comes or goes)
            extra=Sum(
                Greatest(
                    F("assignments_wanted") - Coalesce(F("assignments_published"), Value(job.answers_per_hit)),
                    Value(0),
                ),
                output_field=IntegerField(),
            ),
            saved=Sum(Value(top) - F("assignments_wanted"), filter=done & Q(assignments_wanted__lt=top)),
        )
    )
    skills = AdaptiveSkills.objects.filter(job_id=job.pk).values(
        "fitted_at", "answers_at_fit", "budget_exhausted_at", "budget_step"
    )
    fit = skills.first() or {"fitted_at": None, "answers_at_fit": 0, "budget_exhausted_at": None, "budget_step": None}
    return AdaptiveProgress(
        min_answers=job.adaptive_min_answers,
        max_answers=top,
        target=job.adaptive_target,
        hits_collecting=row["collecting"],
        hits_stopped_early=row["stopped"],
        hits_at_maximum=row["at_max"],
        extra_answers_requested=row["extra"] or 0,
        answers_saved=row["saved"] or 0,
        items_at_target=ConsensusLabel.objects.filter(job_id=job.pk, confidence__gte=job.adaptive_target).count(),
        skills_fitted_at=fit["fitted_at"],
        skills_answers_at_fit=fit["answers_at_fit"],
        budget_exhausted_at=fit["budget_exhausted_at"],
        budget_step=fit["budget_step"],
    )
