from __future__ import annotations

import pytest
from django.db import connection

from tasks.tasks import expire_leases_task
from workforce.audit import Actor, record_audit_event, verify_audit_chain
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db


def _three_events() -> list[AuditEvent]:
    actor = Actor.system("tests")
    return [
        record_audit_event(actor=actor, action="job.created", object_type="job", object_id=1, after={"name": "a"}),
        record_audit_event(
            actor=actor, action="job.published", object_type="job", object_id=1, before={"state": "draft"}
        ),
        record_audit_event(actor=actor, action="job.paused", object_type="job", object_id=1, reason="why not"),
    ]


def test_events_form_a_hash_chain_that_verifies():
    events = _three_events()
    assert events[0].previous_hash == "0" * 64
    assert events[1].previous_hash == events[0].hash
    assert events[2].previous_hash == events[1].hash
    assert verify_audit_chain() is None


@pytest.mark.parametrize(
    ("column", "value"), [("reason", "edited"), ("actor_label", "someone else"), ("after", '{"x": 1}')]
)
def test_tampering_with_a_past_event_is_caught(column, value):
    events = _three_events()
    with connection.cursor() as cur:
        cur.execute(f"UPDATE workforce_auditevent SET {column} = %s WHERE id = %s", [value, events[1].pk])
    broken = verify_audit_chain()
    assert broken is not None and broken.pk == events[1].pk


def test_events_cannot_be_changed_or_deleted_through_the_orm():
    event = _three_events()[0]
    event.reason = "rewritten"
    with pytest.raises(RuntimeError, match="append-only"):
        event.save()
    with pytest.raises(RuntimeError, match="append-only"):
        event.delete()


def test_the_beat_schedule_names_registered_tasks():
    from django.conf import settings

    from config.celery import app

    app.loader.import_default_modules()  # what a worker or beat does at start: autodiscover each app's tasks
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks
    assert expire_leases_task.name == settings.CELERY_BEAT_SCHEDULE["expire-leases"]["task"]
