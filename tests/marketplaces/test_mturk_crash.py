"""The crash test: a real Celery worker publishes 1,000 Hits to the MTurk stand-in while 10% of the calls
fail (throttling, 5xx, replies lost after the stand-in committed), is killed with SIGKILL mid-run and
restarted; then pays bonuses the same way. Afterwards every Hit has exactly one HIT, recorded once here,
no bonus was paid twice, and the ledger equals the stand-in's charges to the cent.

Needs PostgreSQL and Redis (marked ``broker``), e.g.::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crowdops_mturk CELERY_BROKER_URL=redis://127.0.0.1:6379/13 \\
        python -m pytest -q -m broker tests/marketplaces/test_mturk_crash.py
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db.models import Count, Sum

from config.celery import app
from tasks.models import Assignment, CostEntry, Hit, HitState, JobState, MTurkBonus, MTurkBonusState
from tasks.mturk_tasks import (
    publish_mturk_hits_task,
    publish_pending_mturk_hits_task,
    retry_pending_mturk_bonuses_task,
    send_mturk_bonus_task,
)
from tasks.services.mturk_collect import collect_mturk_work
from tasks.services.publishing import publish_job
from tests.factories import ItemFactory, JobFactory
from tests.marketplaces.mturk_standin import FaultPlan, MTurkStandIn
from tests.mturk_fixtures import SITE, standin_connector
from workforce.audit import Actor

ROOT = Path(__file__).resolve().parent.parent.parent
HITS = 1000
BONUSES = 300
ACTOR = Actor.system("crash test")

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(not settings.CELERY_BROKER_URL, reason="no broker: set CELERY_BROKER_URL=redis://..."),
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="the worker shares the test database: set DATABASE_URL"),
]


def _database_url() -> str:
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Worker:
    """A ``celery worker`` process (4 threads) that can be SIGKILLed and started again."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=threads", "--concurrency=4",
                 "--loglevel=WARNING", "--without-heartbeat", "--without-gossip", "--without-mingle",
                 "-n", f"crash-{os.getpid()}-{time.monotonic_ns()}@%h"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=20)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@pytest.fixture
def crash_env(aws_env: None, tmp_path: Path) -> Iterator[tuple[MTurkStandIn, Worker]]:
    with MTurkStandIn(balance=Decimal("100000.00")) as standin:
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "MTURK_ENABLED": "1",
            "MTURK_ENDPOINT_URL": standin.url,
            "MTURK_EXTERNAL_QUESTION_BASE_URL": SITE,
            "MTURK_REQUESTS_PER_SECOND": "400",
            "MTURK_REQUEST_BURST": "50",
            "MTURK_RATE_LIMIT_REDIS_URL": settings.CELERY_BROKER_URL,
            "MTURK_PUBLISH_STALE_SECONDS": "5",
            "MTURK_MAX_ATTEMPTS": "6",
        }
        env.pop("PYTEST_CURRENT_TEST", None)
        app.control.purge()
        worker = Worker(env, tmp_path / "worker.log")
        try:
            yield standin, worker
        finally:
            worker.stop()
            app.control.purge()


def _wait(
    condition: Callable[[], bool], worker: Worker, *, seconds: float, nudge: Callable[[], Any] | None = None
) -> None:
    deadline = time.monotonic() + seconds
    last_nudge = 0.0
    while time.monotonic() < deadline:
        if condition():
            return
        assert worker.alive(), worker.log.read_text()[-3000:]
        if nudge and time.monotonic() - last_nudge > 6:  # what Celery beat does every minute
            nudge()
            last_nudge = time.monotonic()
        time.sleep(0.5)
    raise AssertionError(f"not done in {seconds} s; worker log tail:\n{worker.log.read_text()[-3000:]}")


def _ledger() -> Decimal:
    return CostEntry.objects.aggregate(total=Sum("amount"))["total"] or Decimal("0")


@pytest.mark.django_db(transaction=True)
def test_publish_and_bonuses_survive_faults_and_a_sigkilled_worker(
    crash_env: tuple[MTurkStandIn, Worker], settings: Any
) -> None:
    standin, worker = crash_env
    settings.MTURK_ENABLED = True
    settings.MTURK_EXTERNAL_QUESTION_BASE_URL = SITE
    job = JobFactory(marketplace="mturk", reward=Decimal("0.07"), redundancy=3, state=JobState.DRAFT)
    ItemFactory.create_batch(HITS, job=job)
    plan = FaultPlan(rate=0.10, seed=11)
    standin.state.faults = plan

    # --- publish, kill mid-run, restart --------------------------------------------------------------
    worker.start()
    publish_job(job=job, actor=ACTOR)  # queues one publisher; three more share the work
    for _ in range(3):
        publish_mturk_hits_task.delay(job_id=job.pk)
    recorded = Hit.objects.filter(job=job, external_id__isnull=False)
    _wait(lambda: recorded.count() >= HITS // 3, worker, seconds=300)
    worker.kill()
    killed_at = recorded.count()
    assert killed_at < HITS, "the worker finished before it could be killed"
    worker.start()
    _wait(lambda: recorded.count() == HITS, worker, seconds=600, nudge=publish_pending_mturk_hits_task.delay)

    assert len(standin.state.hits) == HITS
    assert sorted(recorded.values_list("external_id", flat=True)) == sorted(standin.state.hits)
    annotations = [h["RequesterAnnotation"] for h in standin.state.hits.values()]
    assert len(set(annotations)) == HITS
    assert Hit.objects.filter(job=job).exclude(state=HitState.OPEN).count() == 0
    assert _ledger() == standin.state.total_charged()
    assert sum(plan.injected.values()) > 0 and plan.injected.get("lost", 0) > 0

    # --- bonuses: each queued twice, faults, kill mid-run, restart ------------------------------------
    standin.state.faults = FaultPlan()
    for n, hit_id in enumerate(list(standin.state.hits)[:BONUSES]):
        assignment = standin.state.accept(hit_id, f"AW{n:05d}")
        standin.state.external_submit(
            [
                ("assignmentId", assignment),
                (f"item:{Hit.objects.get(external_id=hit_id).items.get().external_id}", "pos"),
            ]
        )
    collect_mturk_work(actor=ACTOR, connector=standin_connector(standin.url))
    assignments = list(Assignment.objects.filter(job=job, marketplace="mturk").order_by("id"))
    assert len(assignments) == BONUSES
    standin.state.faults = FaultPlan(rate=0.10, seed=12, operations=frozenset({"SendBonus"}))
    for _ in range(2):
        for assignment in assignments:
            send_mturk_bonus_task.delay(
                assignment_id=assignment.pk,
                amount="0.25",
                reason="Careful work",
                idempotency_key=f"bonus-{assignment.pk}",
            )
    sent = MTurkBonus.objects.filter(state=MTurkBonusState.SENT)
    _wait(lambda: sent.count() >= BONUSES // 3, worker, seconds=300)
    worker.kill()
    assert sent.count() < BONUSES, "the worker finished the bonuses before it could be killed"
    worker.start()
    _wait(lambda: sent.count() == BONUSES, worker, seconds=600, nudge=retry_pending_mturk_bonuses_task.delay)

    paid = {}
    for bonus in standin.state.bonuses:
        paid[bonus["AssignmentId"]] = paid.get(bonus["AssignmentId"], 0) + 1
    assert len(paid) == BONUSES and set(paid.values()) == {1}
    assert MTurkBonus.objects.count() == BONUSES
    assert not MTurkBonus.objects.values("assignment").annotate(n=Count("id")).filter(n__gt=1).exists()
    assert _ledger() == standin.state.total_charged()
    print(
        f"\nkilled after {killed_at} of {HITS} HITs; faults injected: publish {plan.injected}; "
        f"stand-in calls {standin.state.calls}; ledger {_ledger()} = stand-in charges {standin.state.total_charged()}"
    )
