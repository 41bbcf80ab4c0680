"""The scores page aggregates in the database: a fixed number of queries however many tasks the worker did,
and the same figures as a plain reading of every row (computed here, independently, from the raw rows)."""

from __future__ import annotations

import random
from dataclasses import asdict
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tasks.models import (
    Answer,
    Assignment,
    AssignmentState,
    CostEntry,
    CostKind,
    CostStatus,
    GoldGrade,
    Hit,
    HitState,
    Item,
    Job,
    JobBlock,
    PayMode,
    WorkerJobScore,
)
from tasks.services.review import pay_for
from tasks.worker_scores import SCORE_BLOCK, WorkerJobScorecard, list_worker_scorecards
from tests.factories import JobFactory, WorkerFactory
from workforce.models import Worker
from workforce.scoring import gold_accuracy

pytestmark = pytest.mark.django_db

EARNING = {CostKind.REWARD, CostKind.INTERNAL_PAY, CostKind.BONUS}


def make_jobs() -> list[Job]:
    """Four jobs: piece and hourly pay, reviewed by people or approved automatically."""
    return [
        JobFactory(name="Piece, people review", reward=Decimal("0.0700")),
        JobFactory(
            name="Hourly, people review",
            pay_mode=PayMode.HOURLY,
            hourly_rate=Decimal("12.3456"),
            assignment_duration=timedelta(minutes=10),
        ),
        JobFactory(name="Piece, auto approved", reward=Decimal("0.1250"), auto_approve_after=timedelta(days=1)),
        JobFactory(
            name="Hourly, auto approved",
            currency="EUR",
            pay_mode=PayMode.HOURLY,
            hourly_rate=Decimal("9.9900"),
            assignment_duration=timedelta(minutes=5),
            auto_approve_after=timedelta(hours=2),
        ),
    ]


def add_assignments(worker: Worker, jobs: list[Job], n: int, *, seed: int, now: datetime) -> list[Assignment]:
    """``n`` assignments of ``worker`` over ``jobs`` (written in bulk): every state, submission times with ties,
    active times over the duration, gold graded right, wrong and partly, missed-gold rejections (overtaken by
    later reviewed work, auto-reviewed since, or still waiting), pay, bonuses and a reversal."""
    rng = random.Random(seed)
    hits = Hit.objects.bulk_create(
        Hit(job=jobs[i % len(jobs)], assignments_wanted=1, state=HitState.COMPLETE) for i in range(n)
    )
    start = now - timedelta(days=3)
    rows = []
    for i, hit in enumerate(hits):
        state = rng.choices(
            [AssignmentState.SUBMITTED, AssignmentState.APPROVED, AssignmentState.REJECTED, AssignmentState.RETURNED],
            [3, 5, 2, 1],
        )[0]
        # tasks i and i + 4 (same job) share a submission time: the id breaks the tie
        group = i // 8
        submitted = start + timedelta(seconds=group * 97, microseconds=group * 7919 % 10**6 if group % 3 else 0)
        if i >= n - 8:  # the last two of each job, half an hour ago: a missed-gold rejection, then unreviewed work
            state = AssignmentState.REJECTED if i < n - 4 else AssignmentState.SUBMITTED
            submitted = now - timedelta(minutes=30, seconds=n - i)
            if state == AssignmentState.REJECTED and hit.job.auto_approve_after == timedelta(days=1):
                submitted = now - timedelta(days=2)  # its auto-review has run: no longer shown as waiting
        accepted = submitted - timedelta(seconds=rng.randrange(1, 900), microseconds=rng.randrange(10**6))
        rows.append(
            Assignment(
                hit=hit,
                job_id=hit.job_id,
                worker=worker,
                state=state,
                accepted_at=accepted,
                lease_expires_at=accepted + timedelta(minutes=10),
                submitted_at=None if state == AssignmentState.RETURNED else submitted,
                reward=hit.job.reward,
            )
        )
    done = Assignment.objects.bulk_create(rows)
    items = {
        job.pk: Item.objects.create(job=job, external_id=f"gold-{seed}-{job.pk}", payload={}, payload_hash="x")
        for job in jobs
    }
    plain = {
        job.pk: Item.objects.create(job=job, external_id=f"plain-{seed}-{job.pk}", payload={}, payload_hash="y")
        for job in jobs
    }
    answers, scores = [], []
    for i, a in enumerate(done):
        if a.submitted_at is None or (rng.random() < 0.4 and i < n - 8):
            continue
        graded = [rng.choice([0.0, 0.0, 0.5, 1.0])] if i < n - 8 else [0.0]
        if rng.random() < 0.3 and i < n - 8:
            graded.append(rng.choice([0.0, 1.0]))
        for k, score in enumerate(graded):
            item = items[a.job_id] if k == 0 else plain[a.job_id]
            answers.append(Answer(assignment=a, item=item, job_id=a.job_id, worker=worker, value="x"))
            scores.append(score)
    answers = Answer.objects.bulk_create(answers)
    GoldGrade.objects.bulk_create(
        GoldGrade(answer=ans, job_id=ans.job_id, worker=worker, item=ans.item, score=score, created_at=now)
        for ans, score in zip(answers, scores, strict=True)
    )
    costs = [
        CostEntry(
            job_id=a.job_id,
            assignment=a,
            worker=worker,
            marketplace="internal",
            kind=rng.choice([CostKind.INTERNAL_PAY, CostKind.REWARD, CostKind.MARKETPLACE_FEE]),
            status=CostStatus.COMMITTED,
            amount=Decimal(rng.randrange(1, 500)) / 1000,
            idempotency_key=f"pay-{seed}-{a.pk}",
            created_at=now,
        )
        for a in done
        if a.state == AssignmentState.APPROVED
    ]
    costs += [
        CostEntry(
            job=job,
            worker=worker,
            marketplace="internal",
            kind=CostKind.BONUS,
            status=CostStatus.COMMITTED,
            amount=Decimal("0.3300"),
            idempotency_key=f"bonus-{seed}-{job.pk}",
            created_at=now,
        )
        for job in jobs
    ]
    booked = CostEntry.objects.bulk_create(costs)
    CostEntry.objects.create(
        job_id=booked[0].job_id,
        assignment=booked[0].assignment,
        worker=worker,
        marketplace="internal",
        kind=CostKind.REVERSAL,
        status=CostStatus.COMMITTED,
        amount=-booked[0].amount,
        reverses=booked[0],
        idempotency_key=f"rev-{seed}",
        created_at=now,
    )
    return done


def expected_cards(worker: Worker, now: datetime) -> list[WorkerJobScorecard]:
    """The figures the page must show, by reading every row of the worker in Python (the module docstring of
    ``tasks.worker_scores`` says what they mean)."""
    schedule = settings.CELERY_BEAT_SCHEDULE.get("auto-review", {}).get("schedule")
    sweep = schedule if isinstance(schedule, timedelta) else timedelta(0)
    done = sorted(
        Assignment.objects.filter(worker=worker, submitted_at__isnull=False).exclude(
            state__in=[AssignmentState.ACCEPTED, AssignmentState.RETURNED, AssignmentState.EXPIRED]
        ),
        key=lambda a: (a.submitted_at, a.pk),
    )
    grades: dict[int, list[GoldGrade]] = {}
    for grade in GoldGrade.objects.filter(worker=worker).select_related("answer"):
        grades.setdefault(grade.answer.assignment_id, []).append(grade)
    costs = list(CostEntry.objects.filter(worker=worker).select_related("reverses", "assignment"))
    scores = {s.job_id: s for s in WorkerJobScore.objects.filter(worker=worker)}
    blocks = {b.job_id: b for b in JobBlock.objects.filter(worker=worker, lifted_at__isnull=True)}
    cards = []
    for job in sorted({a.job for a in done}, key=lambda j: -j.pk):
        mine = [a for a in done if a.job_id == job.pk]
        counted = len(mine) // SCORE_BLOCK * SCORE_BLOCK
        cutoff = mine[counted - 1].submitted_at if counted else None
        covered = {a.pk for a in mine if cutoff is not None and a.submitted_at <= cutoff}
        gold = [g for pk in covered for g in grades.get(pk, [])]
        right = sum(g.score for g in gold)
        accuracy = gold_accuracy(right, len(gold)) if gold else None
        earned = sum(
            (
                c.amount
                for c in costs
                if c.job_id == job.pk
                and cutoff is not None
                and (c.kind in EARNING or (c.kind == CostKind.REVERSAL and c.reverses.kind in EARNING))
                and (c.assignment is None or c.assignment.submitted_at <= cutoff)
            ),
            Decimal("0"),
        )

        def missed_gold(a: Assignment) -> bool:
            mine_graded = grades.get(a.pk, [])
            return a.state == AssignmentState.REJECTED and bool(mine_graded) and max(g.score for g in mine_graded) <= 0

        waiting = []
        for k, a in enumerate(mine):
            if a.state == AssignmentState.SUBMITTED:
                waiting.append(a)
            elif missed_gold(a):
                later_reviewed = any(b.state != AssignmentState.SUBMITTED and not missed_gold(b) for b in mine[k + 1 :])
                overdue = job.auto_approve_after is not None and a.submitted_at + job.auto_approve_after + sweep <= now
                if not later_reviewed and not overdue:
                    waiting.append(a)
        score, block = scores.get(job.pk), blocks.get(job.pk)
        cards.append(
            WorkerJobScorecard(
                job_id=job.pk,
                job_name=job.name,
                currency=job.currency,
                submitted=len(mine),
                counted=counted,
                gold_answers=len(gold),
                accuracy=accuracy.mean if accuracy else None,
                accuracy_low=accuracy.low if accuracy else None,
                accuracy_high=accuracy.high if accuracy else None,
                agreement=score.agreement if score else None,
                answers=score.answers if score else 0,
                median_seconds=score.median_seconds if score else None,
                too_fast=bool(score and score.fast_share and score.fast_share > 0.5),
                earnings=earned,
                awaiting_review=len(waiting),
                awaiting_pay=sum((pay_for(job, a) for a in waiting), Decimal("0")),
                blocked_at=block.created_at if block else None,
                block_reason=block.reason if block else "",
            )
        )
    return cards


def _same(actual: list[WorkerJobScorecard], expected: list[WorkerJobScorecard]) -> None:
    assert [c.job_id for c in actual] == [c.job_id for c in expected]
    for got, want in zip(actual, expected, strict=True):
        got_fields, want_fields = asdict(got), asdict(want)
        for name in ("accuracy", "accuracy_low", "accuracy_high"):
            assert got_fields.pop(name) == pytest.approx(want_fields.pop(name)), (got.job_name, name)
        assert got_fields == want_fields, got.job_name


@pytest.fixture
def busy_worker() -> tuple[Worker, Worker, list[Job]]:
    now = timezone.now()
    worker, other = WorkerFactory(), WorkerFactory()
    jobs = make_jobs()
    add_assignments(worker, jobs, 300, seed=1, now=now)
    add_assignments(other, jobs, 60, seed=2, now=now)  # someone else's work in the same jobs
    WorkerJobScore.objects.create(
        job=jobs[0], worker=worker, agreement=0.81, answers=40, median_seconds=6.5, fast_share=0.6, updated_at=now
    )
    WorkerJobScore.objects.create(job=jobs[1], worker=other, agreement=0.1, answers=3, updated_at=now)
    JobBlock.objects.create(job=jobs[2], worker=worker, reason="chance accuracy", created_at=now)
    return worker, other, jobs


def test_the_cards_show_the_same_figures_as_reading_every_row(busy_worker: tuple[Worker, Worker, list[Job]]) -> None:
    worker, _, _ = busy_worker
    cards = list_worker_scorecards(worker)
    expected = expected_cards(worker, timezone.now())
    _same(cards, expected)
    # the data reaches every branch: complete blocks, gold, earnings, waiting work and hidden rejections
    assert all(c.counted and c.gold_answers and c.earnings and c.awaiting_review for c in cards)
    assert {c.currency for c in cards} == {"USD", "EUR"}


def test_a_worker_sees_only_their_own_figures(busy_worker: tuple[Worker, Worker, list[Job]]) -> None:
    worker, other, jobs = busy_worker
    theirs = list_worker_scorecards(other)
    _same(theirs, expected_cards(other, timezone.now()))
    assert [c.submitted for c in theirs] != [c.submitted for c in list_worker_scorecards(worker)]
    assert all(c.agreement is None and c.blocked_at is None for c in theirs if c.job_id != jobs[1].pk)


def _page_queries(worker: Worker) -> tuple[int, str]:
    client = Client()
    client.force_login(worker.user)
    client.get(reverse("work-list"))  # the session and the user are cached alike for both readings
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("my-scores"))
    assert response.status_code == 200
    return len(ctx.captured_queries), response.content.decode()


def test_the_page_costs_the_same_queries_for_100_or_400_tasks() -> None:
    now = timezone.now()
    jobs = make_jobs()
    small, big = WorkerFactory(), WorkerFactory()
    add_assignments(small, jobs, 100, seed=3, now=now)
    add_assignments(big, jobs, 400, seed=4, now=now)
    few, _ = _page_queries(small)
    many, page = _page_queries(big)
    assert many == few
    assert "waiting for review" in page
    with CaptureQueriesContext(connection) as ctx:
        cards = list_worker_scorecards(big)
    assert len(ctx.captured_queries) <= 7  # was 7 too, but read every submitted assignment
    _same(cards, expected_cards(big, timezone.now()))
