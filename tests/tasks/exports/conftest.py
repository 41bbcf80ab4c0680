"""A small labeled job: 4 items, 3 workers (worker 2 always says "neg"), consensus computed, costs booked."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from tasks.models import Assignment, Job
from tasks.services.collection import submit_assignment
from tasks.services.consensus import compute_consensus
from tasks.services.ledger import CostLine, record_costs
from tasks.services.pool import assign_next_hit
from workforce.audit import Actor
from workforce.models import Worker

SYSTEM = Actor.system("tests")


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


def work(job: Job, workers: list[Worker], choose: Callable[[int, str], Any]) -> None:
    for n, worker in enumerate(workers):
        for _ in range(job.items.count()):
            a = assign_next_hit(job=job, worker=worker)
            item = a.hit.items.get()
            submit_assignment(assignment=a, worker=worker, answers={item.pk: choose(n, item.external_id)})


@pytest.fixture
def labeled_job(make_published_job: Callable[..., Job], make_worker: Callable[..., Worker]) -> Job:
    job = make_published_job(items=4, redundancy=3, consensus_method="mv")
    workers = [make_worker() for _ in range(3)]
    work(job, workers, lambda n, ext: "neg" if n == 2 else "pos")
    compute_consensus(job=job, actor=SYSTEM)
    # Each assignment is paid 0.05 plus a 0.01 fee; each Hit carries a 0.03 charge of its own.
    lines = []
    for a in Assignment.objects.filter(job=job):
        lines.append(CostLine(job.pk, "reward", Decimal("0.05"), f"r-{a.pk}", "internal", assignment_id=a.pk))
        lines.append(CostLine(job.pk, "marketplace_fee", Decimal("0.01"), f"f-{a.pk}", "internal", assignment_id=a.pk))
    for hit_id in job.hits.values_list("id", flat=True):
        lines.append(CostLine(job.pk, "gt_object_charge", Decimal("0.03"), f"h-{hit_id}", "internal", hit_id=hit_id))
    record_costs(lines)
    return job
