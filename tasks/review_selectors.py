"""Reads for review: which submitted assignments passed their gold questions (set-based)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from tasks.models import Assignment, AssignmentState, GoldGrade, Job

GOLD_PASS_SCORE = 0.5  # a gold grade below this is a failed check question


def _graded(*, failed: bool) -> Exists:
    grades = GoldGrade.objects.filter(answer__assignment_id=OuterRef("pk"))
    return Exists(grades.filter(score__lt=GOLD_PASS_SCORE) if failed else grades)


def list_submitted_passing_gold(job: Job) -> QuerySet[Assignment, int]:
    """Ids of the job's submitted assignments with at least one gold grade and none failed."""
    return (
        Assignment.objects.filter(job_id=job.pk, state=AssignmentState.SUBMITTED)
        .filter(_graded(failed=False))
        .exclude(_graded(failed=True))
        .values_list("pk", flat=True)
    )


@dataclass(frozen=True)
class GoldCounts:
    passed: int
    failed: int
    ungraded: int


def count_submitted_by_gold(job: Job) -> GoldCounts:
    """The job's submitted assignments by their gold outcome, in one query."""
    row = (
        Assignment.objects.filter(job_id=job.pk, state=AssignmentState.SUBMITTED)
        .annotate(any_grade=_graded(failed=False), any_failed=_graded(failed=True))
        .aggregate(
            failed=Count("pk", filter=Q(any_failed=True)),
            passed=Count("pk", filter=Q(any_grade=True, any_failed=False)),
            ungraded=Count("pk", filter=Q(any_grade=False)),
        )
    )
    return GoldCounts(passed=row["passed"], failed=row["failed"], ungraded=row["ungraded"])
