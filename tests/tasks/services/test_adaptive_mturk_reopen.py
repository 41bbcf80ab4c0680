"""An adaptive MTurk job that had completed is published again when its HITs take more assignments, as the pool's
extra answers and the ops manager's "more answers" reopen theirs, and the reopen is audited with the job's state."""

from __future__ import annotations

import pytest

from tasks.models import Hit, Job, JobState
from tasks.services.adaptive import allocate_adaptive_answers
from tasks.services.mturk_collect import collect_mturk_work
from tests.marketplaces.mturk_standin import MTurkStandIn
from tests.tasks.services.mturk_helpers import ACTOR, published_mturk_job
from workforce.marketplaces.mturk import MTurkMarketplace
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_a_completed_job_whose_hit_mturk_extends_is_published_again(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    job = published_mturk_job(
        mturk, 1, labels=["pos", "neg"], adaptive_min_answers=2, adaptive_max_answers=5, adaptive_target=0.9
    )
    hit = Hit.objects.get(job=job)
    for n, label in enumerate(("pos", "neg")):  # split: the item is far from settled
        external = standin.state.accept(str(hit.external_id), f"AW{n}")
        standin.state.external_submit([("assignmentId", external), (f"item:{hit.items.get().external_id}", label)])
    collect_mturk_work(actor=ACTOR, connector=mturk)
    assert Job.objects.get(pk=job.pk).state == JobState.COMPLETED
    assert allocate_adaptive_answers(job=job, actor=ACTOR, connector=mturk) == 1
    assert Hit.objects.get(pk=hit.pk).assignments_wanted == 3
    job = Job.objects.get(pk=job.pk)
    assert job.state == JobState.PUBLISHED and job.completed_at is None
    event = AuditEvent.objects.filter(action="job.adaptive_answers_requested", object_id=str(job.pk)).latest("id")
    assert event.before == {"state": "completed"}
    assert event.after == {"state": "published", "hits": 1, "extra": 1, "marketplace": "mturk"}
