from __future__ import annotations

import pytest

from tasks.models import Hit, HitItem, HitState, JobState
from tasks.services.errors import InvalidTransition, ServiceError
from tasks.services.publishing import cancel_job, pause_job, publish_job, resume_job
from tests.factories import ItemFactory, JobFactory
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_publishing_builds_one_open_hit_per_group_of_items(actor):
    job = JobFactory(items_per_hit=2, redundancy=4)
    ItemFactory.create_batch(5, job=job)
    publish_job(job=job, actor=actor)
    job.refresh_from_db()
    assert job.state == JobState.PUBLISHED and job.published_at is not None
    hits = list(Hit.objects.filter(job=job))
    assert len(hits) == 3
    assert {h.state for h in hits} == {HitState.OPEN}
    assert {h.assignments_wanted for h in hits} == {4}
    assert sorted(HitItem.objects.filter(hit__job=job).values_list("position", flat=True)) == [0, 0, 0, 1, 1]
    assert HitItem.objects.filter(hit__job=job).values("item").distinct().count() == 5


def test_a_job_without_items_or_labels_cannot_be_published(actor):
    with pytest.raises(ServiceError, match="Import items"):
        publish_job(job=JobFactory(), actor=actor)
    job = JobFactory(labels=["only"])
    ItemFactory(job=job)
    with pytest.raises(ServiceError, match="two labels"):
        publish_job(job=job, actor=actor)


def test_the_lifecycle_is_audited_in_order(actor, make_published_job):
    job = make_published_job(items=1)
    pause_job(job=job, actor=actor, reason="checking instructions")
    resume_job(job=job, actor=actor)
    cancel_job(job=job, actor=actor)
    actions = list(AuditEvent.objects.filter(object_type="job", object_id=str(job.pk)).values_list("action", flat=True))
    assert actions == ["job.published", "job.paused", "job.resumed", "job.cancelled"]
    paused = AuditEvent.objects.get(action="job.paused")
    assert paused.before == {"state": "published"} and paused.after == {"state": "paused"}
    assert paused.reason == "checking instructions"
    assert set(Hit.objects.filter(job=job).values_list("state", flat=True)) == {HitState.CANCELLED}


def test_invalid_transitions_are_refused_with_the_current_state(actor, make_published_job):
    job = make_published_job(items=1)
    with pytest.raises(InvalidTransition, match="is published"):
        resume_job(job=job, actor=actor)
    with pytest.raises(InvalidTransition):
        publish_job(job=job, actor=actor)
    cancel_job(job=job, actor=actor)
    with pytest.raises(InvalidTransition, match="cancelled"):
        pause_job(job=job, actor=actor)


def test_a_state_change_whose_audit_event_fails_changes_nothing(actor, make_published_job, monkeypatch):
    import tasks.services.publishing as publishing

    job = make_published_job(items=1)

    def audit_down(**_: object) -> None:
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(publishing, "record_audit_event", audit_down)
    with pytest.raises(RuntimeError):
        pause_job(job=job, actor=actor)
    job.refresh_from_db()
    assert job.state == JobState.PUBLISHED


def test_the_audit_event_records_the_state_the_change_left(actor, make_published_job):
    job = make_published_job(items=1)
    stale = type(job).objects.get(pk=job.pk)
    pause_job(job=job, actor=actor)
    cancel_job(job=stale, actor=actor)  # this copy still says "published"
    event = AuditEvent.objects.filter(action="job.cancelled").get()
    assert event.before == {"state": "paused"}
