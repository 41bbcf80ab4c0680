"""Many workers in parallel threads against real PostgreSQL: the pool's three rules hold.

Rules: a worker never gets the same item twice; no Hit collects more submitted assignments than it
wants; an expired lease is not accepted as a submission.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection, connections
from django.db.models import F

from tasks.models import Answer, Assignment, AssignmentState, Hit, HitState, Job, JobState
from tasks.selectors import list_hit_items
from tasks.services.collection import submit_assignment
from tasks.services.errors import NoWorkAvailable, SubmissionRefused
from tasks.services.pool import assign_next_hit, return_assignment

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        not settings.IS_POSTGRES,
        reason="needs PostgreSQL (SELECT ... FOR UPDATE SKIP LOCKED); set DATABASE_URL=postgres://...",
    ),
]

THREADS = 24
ITEMS = 240
REDUNDANCY = 3


def _work(job, worker, *, seed: int, slow: bool, stats: Counter, errors: list[BaseException]) -> None:
    rng = random.Random(seed)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            try:
                assignment = assign_next_hit(job=job, worker=worker)
            except NoWorkAvailable:
                # Leases held by others may still expire and come back: wait until the job is done.
                if Job.objects.filter(pk=job.pk, state=JobState.COMPLETED).exists():
                    break
                time.sleep(0.05)
                continue
            items = [item.pk for item in list_hit_items(assignment.hit_id)]
            roll = rng.random()
            if roll < 0.05:
                return_assignment(assignment=assignment, worker=worker)
                stats["returned"] += 1
                continue
            if slow and roll < 0.35:
                time.sleep(1.3)  # longer than the lease: this submission must be refused
            try:
                submit_assignment(
                    assignment=assignment, worker=worker, answers={i: rng.choice(job.labels) for i in items}
                )
                stats["submitted"] += 1
            except SubmissionRefused as exc:
                assert "ran out" in str(exc), str(exc)
                stats["refused_late"] += 1
    except BaseException as exc:  # surfaced to the main thread
        errors.append(exc)
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_parallel_workers_keep_the_three_rules(make_published_job, make_worker):
    job = make_published_job(items=ITEMS, redundancy=REDUNDANCY, assignment_duration=timedelta(seconds=1))
    workers = [make_worker() for _ in range(THREADS)]
    stats: Counter = Counter()
    errors: list[BaseException] = []
    threads = [
        threading.Thread(
            target=_work, args=(job, w), kwargs={"seed": n, "slow": n % 6 == 0, "stats": stats, "errors": errors}
        )
        for n, w in enumerate(workers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    assert not errors, errors

    # Every Hit got exactly the answers it wanted, and the job finished.
    assert stats["submitted"] == ITEMS * REDUNDANCY
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert set(Hit.objects.filter(job=job).values_list("state", flat=True)) == {HitState.COMPLETE}
    assert stats["refused_late"] > 0, "the slow workers should have lost some leases"

    with connection.cursor() as cur:
        # Rule 1: no worker holds two assignments that share an item.
        cur.execute(
            """
            SELECT a.worker_id, hi.item_id, COUNT(*) FROM tasks_assignment a
            JOIN tasks_hititem hi ON hi.hit_id = a.hit_id
            WHERE a.job_id = %s GROUP BY a.worker_id, hi.item_id HAVING COUNT(*) > 1
            """,
            [job.pk],
        )
        assert cur.fetchall() == []
        # Rule 2: no Hit has more submitted assignments than it wants; the counter matches the rows.
        cur.execute(
            """
            SELECT h.id, h.assignments_wanted, h.assignments_submitted, COUNT(a.id) FROM tasks_hit h
            LEFT JOIN tasks_assignment a ON a.hit_id = h.id AND a.state IN ('submitted', 'approved', 'rejected')
            WHERE h.job_id = %s GROUP BY h.id
            HAVING COUNT(a.id) > h.assignments_wanted OR COUNT(a.id) <> h.assignments_submitted
            """,
            [job.pk],
        )
        assert cur.fetchall() == []
    # Rule 3: no submission was accepted after its lease ran out; lost leases left no answers.
    late = Assignment.objects.filter(job=job, state=AssignmentState.SUBMITTED, submitted_at__gt=F("lease_expires_at"))
    assert not late.exists()
    assert not Answer.objects.filter(assignment__state=AssignmentState.EXPIRED).exists()
    assert Answer.objects.filter(job=job).count() == ITEMS * REDUNDANCY
    assert Assignment.objects.filter(job=job, state=AssignmentState.EXPIRED).count() >= stats["refused_late"]
    # The job's tallies, added to by 24 sessions' triggers in parallel, equal a recount of its rows.
    from tasks.selectors import JobTotals, get_job_totals
    from tasks.services.tallies import count_job_rows

    assert get_job_totals(job) == JobTotals(**count_job_rows([job.pk])[job.pk])
    assert get_job_totals(job).answers_submitted == ITEMS * REDUNDANCY


@pytest.mark.django_db(transaction=True)
def test_two_simultaneous_submits_of_one_task_store_it_once(make_published_job, make_worker):
    job = make_published_job(items=1, redundancy=1)
    worker = make_worker()
    assignment = assign_next_hit(job=job, worker=worker)
    item = list_hit_items(assignment.hit_id)[0].pk
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def submit() -> None:
        try:
            barrier.wait()
            submit_assignment(assignment=assignment, worker=worker, answers={item: "pos"})
            outcomes.append("ok")
        except SubmissionRefused:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["ok", "refused", "refused", "refused"]
    assert Answer.objects.filter(item_id=item).count() == 1
    assert Hit.objects.get(pk=assignment.hit_id).assignments_submitted == 1


def _work_pages(job, worker, *, seed: int, errors: list[BaseException]) -> None:
    from tasks.selectors import list_page_items

    rng = random.Random(seed)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            try:
                assignment = assign_next_hit(job=job, worker=worker, rng=rng)
            except NoWorkAvailable:
                if not Hit.objects.filter(job=job).exclude(state=HitState.COMPLETE).exists():
                    break
                time.sleep(0.05)
                continue
            page = list_page_items(assignment)
            answers = {n: rng.choice(job.labels) for n in range(1, len(page) + 1)}
            try:
                submit_assignment(assignment=assignment, worker=worker, answers=answers, by_place=True)
            except SubmissionRefused as exc:  # the worker's other tab submitted this page first
                assert "already submitted" in str(exc), str(exc)
    except BaseException as exc:  # surfaced to the main thread
        errors.append(exc)
    finally:
        connections.close_all()


@pytest.mark.django_db(transaction=True)
def test_parallel_workers_get_gold_placed_on_pages_at_most_once_each(actor, make_worker):
    import io

    from tasks.models import AssignmentGoldItem, GoldGrade
    from tasks.selectors import list_page_items
    from tasks.services.imports import import_items
    from tasks.services.publishing import publish_job
    from tests.factories import JobFactory

    job = JobFactory(items_per_hit=4, gold_rate=0.25, redundancy=2)
    rows = "".join(f"n{i},text {i},\n" for i in range(96)) + "".join(f"g{i},text g{i},pos\n" for i in range(40))
    import_items(job=job, stream=io.StringIO("external_id,text,gold\n" + rows), filename="i.csv", actor=actor)
    job = publish_job(job=job, actor=actor)
    workers = [make_worker() for _ in range(6)]
    errors: list[BaseException] = []
    # two threads per worker: one person working the job in two tabs
    threads = [
        threading.Thread(target=_work_pages, args=(job, workers[n % 6]), kwargs={"seed": n, "errors": errors})
        for n in range(12)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    assert not errors, errors
    # Every Hit got its answers, and the job is completed even when its last two Hits finished at the same moment.
    assert set(Hit.objects.filter(job=job).values_list("state", flat=True)) == {HitState.COMPLETE}
    assert Job.objects.get(pk=job.pk).state == JobState.COMPLETED
    placed = list(AssignmentGoldItem.objects.filter(assignment__job=job).values_list("worker_id", "item_id"))
    assert placed and len(placed) == len(set(placed))
    done = Assignment.objects.filter(job=job, state=AssignmentState.SUBMITTED)
    assert {len(list_page_items(a)) for a in done} == {4}
    graded = GoldGrade.objects.filter(job=job).count()
    assert graded == AssignmentGoldItem.objects.filter(assignment__in=done).count()
    assert Answer.objects.filter(job=job, item__is_gold=False).count() == 96 * 2
