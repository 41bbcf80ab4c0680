"""One worker claiming from several tabs at the same moment on PostgreSQL holds at most one live lease on a
job: the claims are serialised per (job, worker) by an advisory lock taken before the claim statement."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.db import connections

from tasks.models import Assignment, AssignmentState, Job
from tasks.services.errors import NoWorkAvailable
from tasks.services.pool import assign_next_hit
from workforce.models import Worker

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs PostgreSQL; set DATABASE_URL=postgres://..."),
]
WORKERS = 12
TABS = 3


@pytest.mark.django_db(transaction=True)
def test_a_worker_claiming_from_several_tabs_at_once_gets_one_lease(
    make_published_job: Callable[..., Job], make_worker: Callable[..., Worker]
) -> None:
    job = make_published_job(items=WORKERS * TABS, redundancy=2)
    workers = [make_worker() for _ in range(WORKERS)]
    barrier = threading.Barrier(WORKERS * TABS)
    leases: dict[int, set[int]] = {worker.pk: set() for worker in workers}
    errors: list[BaseException] = []

    def tab(worker: Worker) -> None:
        try:
            barrier.wait()
            leases[worker.pk].add(assign_next_hit(job=job, worker=worker).pk)
        except NoWorkAvailable:
            pass
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads: list[Any] = [threading.Thread(target=tab, args=(w,)) for w in workers for _ in range(TABS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert all(len(ids) == 1 for ids in leases.values()), leases  # every tab was given the same lease
    live = Assignment.objects.filter(job=job, state=AssignmentState.ACCEPTED)
    assert live.count() == WORKERS
    assert set(live.values_list("worker_id", flat=True)) == set(leases)
