"""An item import into a running job with a pre-label model and a cancel of that job, on two PostgreSQL
connections, never deadlock: the import builds Hits and re-ranks the job's existing Hits by the model, so it
locks those Hits before the job's row, as the cancel (and every other path) does.

The interleavings are made on purpose, as in ``test_lock_order_pg``: the first call stops at a hook holding its
locks, the second runs until PostgreSQL reports it waiting for a lock, then the first goes on. With the import
locking the job's row first, each of them was a lock cycle that PostgreSQL broke with "deadlock detected"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings

from tasks.models import Hit, HitState, Item, Job, JobState
from tasks.services import hits as hit_services
from tasks.services import predictions, publishing
from tasks.services.errors import ServiceError
from tasks.services.imports import import_items_from_text
from tasks.services.predictions import import_predictions_from_text
from tests.conftest import SYSTEM
from tests.tasks.test_lock_order_pg import Race, _first_runs_then_second, paused_before
from workforce.models import AuditEvent

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs PostgreSQL; set DATABASE_URL=postgres://..."),
    pytest.mark.django_db(transaction=True),
]
NEW_ITEMS = "external_id,text\nnew-1,one more\nnew-2,and another\n"


def _running_job_ranked_by_a_model(make_published_job: Callable[..., Job]) -> Job:
    """A running job of three one-item Hits, each ranked by the job's pre-label model's score of its item (so
    building Hits for new items re-ranks these Hits too)."""
    job = make_published_job(items=3, prelabel_model="m1")
    rows = "".join(
        f"{ext},pos,0.{n + 5}\n" for n, ext in enumerate(job.items.order_by("pk").values_list("external_id", flat=True))
    )
    import_predictions_from_text(
        job=job, text="external_id,label,score\n" + rows, filename="p.csv", model_name="m1", actor=SYSTEM
    )
    assert set(Hit.objects.filter(job=job).values_list("state", flat=True)) == {HitState.OPEN}
    return Job.objects.get(pk=job.pk)


def _import(job: Job) -> Callable[[], Any]:
    return lambda: import_items_from_text(
        job=Job.objects.get(pk=job.pk), text=NEW_ITEMS, filename="more.csv", actor=SYSTEM
    )


def _cancel(job: Job) -> Callable[[], Any]:
    return lambda: publishing.cancel_job(job=Job.objects.get(pk=job.pk), actor=SYSTEM, reason="stop")


def test_a_cancel_while_items_are_imported_into_the_job_cancels_the_new_hits_too(
    make_published_job: Callable[..., Job],
) -> None:
    """The import has locked what it locks and is about to build the new items' Hits when the cancel starts."""
    job = _running_job_ranked_by_a_model(make_published_job)
    race = Race()
    with paused_before(hit_services, "build_hits") as pause:
        _first_runs_then_second(race, pause, ("import", _import(job)), ("cancel", _cancel(job)))
    assert race.errors == {}
    assert (race.results["import"].created, race.results["import"].hits_created) == (2, 2)
    assert Job.objects.get(pk=job.pk).state == JobState.CANCELLED
    hits = Hit.objects.filter(job=job)
    assert hits.count() == 5 and set(hits.values_list("state", flat=True)) == {HitState.CANCELLED}
    cancelled = AuditEvent.objects.filter(action="hit.cancelled").values_list("object_id", flat=True)
    assert sorted(cancelled) == sorted(str(pk) for pk in hits.values_list("pk", flat=True))  # each one audited once
    assert AuditEvent.objects.filter(action="job.cancelled").count() == 1


def test_an_import_while_the_job_is_cancelled_is_refused_and_adds_nothing(
    make_published_job: Callable[..., Job],
) -> None:
    """The cancel has locked the job's Hits and is about to lock the job's row when the import starts."""
    job = _running_job_ranked_by_a_model(make_published_job)
    race = Race()
    with paused_before(publishing, "_transition") as pause:
        _first_runs_then_second(race, pause, ("cancel", _cancel(job)), ("import", _import(job)))
    assert set(race.errors) <= {"import"}
    refusal = race.errors.get("import")
    assert isinstance(refusal, ServiceError) and "cancelled" in str(refusal)  # a refusal, not a database error
    assert Job.objects.get(pk=job.pk).state == JobState.CANCELLED
    assert not Item.objects.filter(job=job, external_id__startswith="new-").exists()
    hits = Hit.objects.filter(job=job)
    assert hits.count() == 3 and set(hits.values_list("state", flat=True)) == {HitState.CANCELLED}
    assert not AuditEvent.objects.filter(action="items.imported").exists()


def test_a_cancel_while_predictions_are_imported_completes_and_so_does_the_import(
    make_published_job: Callable[..., Job],
) -> None:
    """The predictions import has written its rows and is about to re-rank the job's Hits when the cancel starts.
    Django's foreign keys are deferred on PostgreSQL, so those rows lock nothing of the job's until the import
    commits: the cancel takes the Hits and the job's row, finishes, and the import then re-ranks nothing (every
    Hit is cancelled). No cycle forms; this pins that."""
    job = _running_job_ranked_by_a_model(make_published_job)
    rows = "".join(f"{ext},neg,0.9\n" for ext in job.items.values_list("external_id", flat=True))
    race = Race()

    def import_predictions() -> Any:
        return import_predictions_from_text(
            job=Job.objects.get(pk=job.pk),
            text="external_id,label,score\n" + rows,
            filename="p2.csv",
            model_name="m2",
            actor=SYSTEM,
        )

    with paused_before(predictions, "prioritise_hits_by_model") as pause:
        _first_runs_then_second(race, pause, ("predictions", import_predictions), ("cancel", _cancel(job)))
    assert race.errors == {}
    assert race.results["predictions"].created == 3
    assert Job.objects.get(pk=job.pk).state == JobState.CANCELLED
    assert set(Hit.objects.filter(job=job).values_list("state", flat=True)) == {HitState.CANCELLED}
