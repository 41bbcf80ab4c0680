"""The reconcile against an operator's cancel of the same job, two transactions at once on PostgreSQL: the
cancel locks the job and then its Hits, the reconcile a Hit and then its job. The reconcile does not wait for
the job's lock, so neither fails with a deadlock; the HIT is left to the next reconcile."""

from __future__ import annotations

import threading
import time
from typing import Any
from unittest import mock

import pytest
from django.db import connection

from tasks.models import Job
from tasks.services import publishing
from tasks.services.mturk_hits import reconcile_mturk_hits
from tests.marketplaces.mturk_standin import MTurkStandIn
from tests.tasks.services.mturk_helpers import ACTOR, published_mturk_job
from workforce.marketplaces.mturk import MTurkMarketplace

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs PostgreSQL: two transactions racing on row locks"
    ),
]


def test_a_reconcile_racing_a_cancel_of_the_same_job_neither_deadlocks(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    job = published_mturk_job(mturk, 1)
    with mock.patch.object(publishing, "_mturk_availability", lambda *args, **kwargs: None):
        publishing.pause_job(job=job, actor=ACTOR)  # the pause never reached MTurk: its HIT is still live
    job_locked = threading.Event()
    errors: dict[str, BaseException] = {}
    audit = publishing.record_audit_event

    def audit_then_hold_the_lock(**kwargs: Any) -> Any:
        event = audit(**kwargs)
        job_locked.set()
        time.sleep(1.5)  # the reconcile takes the Hit's lock meanwhile
        return event

    def cancel() -> None:
        try:
            with (
                mock.patch.object(publishing, "record_audit_event", audit_then_hold_the_lock),
                mock.patch.object(publishing, "_mturk_availability", lambda *args, **kwargs: None),
            ):
                publishing.cancel_job(job=Job.objects.get(pk=job.pk), actor=ACTOR)
        except BaseException as exc:
            errors["cancel"] = exc
        finally:
            connection.close()

    def reconcile() -> None:
        try:
            job_locked.wait(10)
            reconcile_mturk_hits(actor=ACTOR, connector=mturk)
        except BaseException as exc:
            errors["reconcile"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=cancel), threading.Thread(target=reconcile)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == {}
    assert Job.objects.get(pk=job.pk).state == "cancelled"
    result = reconcile_mturk_hits(actor=ACTOR, connector=mturk)  # the next run: the cancelled HIT expires
    assert len(result.expired) == 1
