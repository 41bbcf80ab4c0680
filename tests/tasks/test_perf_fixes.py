"""Performance fixes: change lists without exact counts or a list of every job, and a speed-score refresh
that reads only new work, in a query count that does not grow with the number of jobs."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from django.contrib import admin
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tasks.admin_filters import RECENT_JOBS
from tasks.models import (
    Assignment,
    ConsensusLabel,
    CostEntry,
    GroundTruthLabel,
    Hit,
    Item,
    Job,
    JobState,
    Prediction,
    WorkerJobScore,
)
from tasks.services.publishing import publish_job
from tasks.services.speed import refresh_published_speed_scores
from tasks.tasks import refresh_speed_scores_task
from tests.factories import ItemFactory, JobFactory, UserFactory, WorkerFactory
from tests.tasks.finance_helpers import submit_work
from workforce import paginator as paginators
from workforce.audit import Actor
from workforce.models import AuditEvent
from workforce.paginator import EstimatedCountPaginator
from workforce.scoring import speed_signal

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("perf tests")
BIG_LISTS = {
    CostEntry: "/admin/tasks/costentry/",
    Hit: "/admin/tasks/hit/",
    ConsensusLabel: "/admin/tasks/consensuslabel/",
    Prediction: "/admin/tasks/prediction/",
    GroundTruthLabel: "/admin/tasks/groundtruthlabel/",
    AuditEvent: "/admin/workforce/auditevent/",
}
JOB_LISTS = [
    "/admin/tasks/item/",
    "/admin/tasks/hit/",
    "/admin/tasks/assignment/",
    "/admin/tasks/workerjobscore/",
    "/admin/tasks/jobblock/",
    "/admin/tasks/assignmentflag/",
    "/admin/tasks/consensuslabel/",
]


def _captured(fn: Any) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return [q["sql"] for q in ctx.captured_queries]


@pytest.fixture
def root() -> Client:
    client = Client()
    client.force_login(UserFactory(username="perf-root", is_staff=True, is_superuser=True))
    return client


# --- change lists of big tables: the planner's estimate, not COUNT(*) --------------------------------


@pytest.mark.parametrize("model", list(BIG_LISTS), ids=lambda m: m.__name__)
def test_the_big_change_lists_page_with_the_estimated_count(model: Any) -> None:
    model_admin = admin.site._registry[model]
    assert model_admin.paginator is EstimatedCountPaginator
    assert model_admin.show_full_result_count is False


@pytest.mark.parametrize("url", list(BIG_LISTS.values()))
def test_a_big_change_list_runs_no_count_on_postgresql(url: str, root: Client, monkeypatch: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the estimate is PostgreSQL's planner's")
    monkeypatch.setattr(paginators, "EXACT_BELOW", 0)  # every table counts as big
    assert root.get(url).status_code == 200
    counts = [sql for sql in _captured(lambda: root.get(url)) if sql.startswith("SELECT COUNT(*)")]
    assert not counts


# --- the job filter: the newest jobs, plus the selected one ----------------------------------------


def _filter_queries(client: Client, url: str) -> int:
    assert client.get(url).status_code == 200
    return len(_captured(lambda: client.get(url)))


@pytest.mark.parametrize("url", JOB_LISTS)
def test_the_job_filter_reads_the_same_with_5_or_60_jobs(url: str, root: Client) -> None:
    JobFactory.create_batch(5)
    at_5 = _filter_queries(root, url)
    JobFactory.create_batch(55)
    response = root.get(url)
    at_60 = _filter_queries(root, url)
    assert at_60 == at_5
    assert len(_job_choices(response)) == RECENT_JOBS


def _job_choices(response: Any) -> list[tuple[str, str]]:
    specs = response.context["cl"].filter_specs
    [job_filter] = [f for f in specs if getattr(f, "parameter_name", "") == "job__id__exact"]
    return list(job_filter.lookup_choices)


def test_the_job_filter_offers_an_older_selected_job_and_filters_by_it(root: Client) -> None:
    old = JobFactory(name="The old job")
    ItemFactory(job=old, external_id="old-item")
    newer = JobFactory.create_batch(RECENT_JOBS + 5)
    ItemFactory(job=newer[-1], external_id="new-item")
    page = root.get("/admin/tasks/item/", {"job__id__exact": old.pk})
    assert page.status_code == 200
    assert [str(i) for i in page.context["cl"].result_list] == ["old-item"]
    assert (str(old.pk), "The old job") in _job_choices(page)
    offered = _job_choices(root.get("/admin/tasks/item/"))
    assert (str(old.pk), "The old job") not in offered and (str(newer[-1].pk), newer[-1].name) in offered
    tampered = root.get("/admin/tasks/item/", {"job__id__exact": "x"})
    assert (tampered.status_code, tampered["Location"]) == (302, "/admin/tasks/item/?e=1")


# --- speed scores ------------------------------------------------------------------------------------


def _published_jobs_with_work(n: int, worker: Any, *, items: int = 2) -> list[Job]:
    jobs = []
    for _ in range(n):
        job = JobFactory(state=JobState.DRAFT, redundancy=1)
        ItemFactory.create_batch(items, job=job)  # one submitted, the others left: the job stays published
        job = publish_job(job=job, actor=SYSTEM)
        submit_work(job, worker)
        jobs.append(job)
    return jobs


def test_the_speed_refresh_costs_the_same_queries_for_2_or_6_jobs_with_new_work() -> None:
    worker = WorkerFactory()
    _published_jobs_with_work(2, worker)
    at_2 = len(_captured(refresh_speed_scores_task))
    _published_jobs_with_work(4, worker)
    at_6 = len(_captured(refresh_speed_scores_task))  # only the 4 new jobs are stale
    assert at_6 == at_2
    assert WorkerJobScore.objects.filter(worker=worker, median_seconds__isnull=False).count() == 6


def test_a_speed_refresh_with_nothing_new_reads_no_assignments_and_a_new_submission_refreshes_its_job() -> None:
    worker = WorkerFactory()
    quiet, busy = _published_jobs_with_work(2, worker, items=3)
    assert refresh_speed_scores_task() == 2
    idle = _captured(refresh_speed_scores_task)
    assert len(idle) == 1  # which jobs are stale (an index probe per job), no assignment rows
    assert refresh_speed_scores_task() == 0
    submit_work(busy, WorkerFactory())
    before = WorkerJobScore.objects.get(job=quiet, worker=worker).updated_at
    assert refresh_speed_scores_task() == 2  # the busy job's two workers
    assert WorkerJobScore.objects.get(job=quiet, worker=worker).updated_at == before


def _old_refresh(job: Job) -> dict[tuple[int, int], tuple[float, float]]:
    """The refresh as it was (per job, durations parsed in Python), as the reference."""
    rows = list(
        Assignment.objects.filter(job=job, submitted_at__isnull=False, hit__is_gold=False).values_list(
            "worker_id", "accepted_at", "submitted_at"
        )
    )
    if not rows:
        return {}
    workers = np.array([r[0] for r in rows], dtype=np.int64)
    seconds = np.array([(done - accepted).total_seconds() for _, accepted, done in rows if done], dtype=np.float64)
    seconds /= job.items_per_hit
    worker_ids, codes = np.unique(workers, return_inverse=True)
    medians, fast_share, _ = speed_signal(codes, seconds, len(worker_ids))
    return {(job.pk, int(w)): (float(m), float(f)) for w, m, f in zip(worker_ids, medians, fast_share, strict=True)}


def test_the_set_based_refresh_gives_the_same_scores_as_the_per_job_one() -> None:
    rng = random.Random(7)
    base = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    workers = WorkerFactory.create_batch(8)
    jobs = [JobFactory(state=JobState.PUBLISHED, items_per_hit=per_hit) for per_hit in (1, 2, 3, 1)]
    rows = []
    for job in jobs:
        for n in range(rng.randint(25, 60)):
            hit = Hit.objects.create(job=job, assignments_wanted=1, is_gold=n % 7 == 0)
            accepted = base + timedelta(minutes=n, microseconds=rng.randint(0, 999_999))
            took = timedelta(seconds=rng.choice([1, 2, 30, 45, 90, 600]), microseconds=rng.randint(0, 999_999))
            rows.append(
                Assignment(
                    hit=hit,
                    job=job,
                    worker=rng.choice(workers),
                    accepted_at=accepted,
                    lease_expires_at=accepted + timedelta(hours=1),
                    submitted_at=None if n % 11 == 5 else accepted + took,
                    reward=Decimal("0.05"),
                )
            )
    Assignment.objects.bulk_create(rows)
    expected: dict[tuple[int, int], tuple[float, float]] = {}
    for job in jobs:
        expected.update(_old_refresh(job))
    assert refresh_published_speed_scores() == len(expected)
    got = {
        (s.job_id, s.worker_id): (s.median_seconds, s.fast_share) for s in WorkerJobScore.objects.filter(job__in=jobs)
    }
    assert got == expected
    assert not Item.objects.exists()  # generated work only
