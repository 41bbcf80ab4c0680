"""Adaptive redundancy over the API: set on create or configure, validated with the job, progress in status."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from tasks.models import Job, JobState
from tasks.services.consensus import compute_consensus
from tests.factories import JobFactory
from tests.tasks.services.test_adaptive import ADAPTIVE, _publish, _run_crowd
from workforce.audit import Actor
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db

NEW_JOB = {"name": "Sentiment", "task_kind": "text_classification", "labels": ["pos", "neg"], "reward": "0.10"}
SETTINGS = {"adaptive_min_answers": 2, "adaptive_max_answers": 5, "adaptive_target": 0.9}


def test_an_adaptive_job_is_created_and_its_settings_are_echoed(api: APIClient) -> None:
    response = api.post("/api/jobs/", {**NEW_JOB, **SETTINGS}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert {name: body[name] for name in SETTINGS} == SETTINGS
    job = Job.objects.get(pk=body["id"])
    assert job.is_adaptive and job.answers_per_hit == 2
    assert AuditEvent.objects.get(action="job.created", object_id=str(job.pk)).after["adaptive_target"] == 0.9


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({**SETTINGS, "adaptive_max_answers": 1}, "adaptive_max_answers", "at least the minimum"),
        ({**SETTINGS, "adaptive_min_answers": 0}, "adaptive_min_answers", "greater than or equal to 1"),
        ({**SETTINGS, "adaptive_target": 0.5}, "adaptive_target", "above 0.5 and below 1"),
        ({**SETTINGS, "adaptive_target": 1}, "adaptive_target", "above 0.5 and below 1"),
        ({"adaptive_min_answers": 2}, "adaptive_min_answers", "a minimum, a maximum and a target"),
        ({**SETTINGS, "marketplace": "groundtruth"}, "adaptive_min_answers", "Ground Truth jobs keep a fixed number"),
        ({**SETTINGS, "task_kind": "text_multilabel"}, "adaptive_min_answers", "single-label classification"),
        ({**SETTINGS, "marketplace": "mturk", "adaptive_max_answers": 10}, "adaptive_max_answers", "below 10"),
    ],
)
def test_bad_adaptive_settings_are_400_naming_the_field(
    api: APIClient, fields: dict[str, Any], field: str, message: str
) -> None:
    response = api.post("/api/jobs/", {**NEW_JOB, **fields}, format="json")
    assert response.status_code == 400
    assert message in " ".join(response.json()[field])
    assert not Job.objects.exists()


def test_a_patch_is_checked_against_the_stored_settings(api: APIClient) -> None:
    job = JobFactory(state=JobState.DRAFT, **ADAPTIVE)
    refused = api.patch(f"/api/jobs/{job.pk}/", {"marketplace": "groundtruth"}, format="json")
    assert refused.status_code == 400
    assert "Ground Truth" in refused.json()["adaptive_min_answers"][0]
    off = {"adaptive_min_answers": None, "adaptive_max_answers": None, "adaptive_target": None}
    cleared = api.patch(f"/api/jobs/{job.pk}/", {"marketplace": "groundtruth", **off}, format="json")
    assert cleared.status_code == 200, cleared.content
    job.refresh_from_db()
    assert job.marketplace == "groundtruth" and not job.is_adaptive


def test_a_running_job_may_change_its_maximum_and_target_but_not_turn_adaptive_off(
    api: APIClient, make_published_job: Any
) -> None:
    job = make_published_job(items=1, **ADAPTIVE)
    changed = api.patch(f"/api/jobs/{job.pk}/", {"adaptive_max_answers": 7, "adaptive_target": 0.95}, format="json")
    assert changed.status_code == 200, changed.content
    assert (changed.json()["adaptive_max_answers"], changed.json()["adaptive_target"]) == (7, 0.95)
    off = {"adaptive_min_answers": None, "adaptive_max_answers": None, "adaptive_target": None}
    refused = api.patch(f"/api/jobs/{job.pk}/", off, format="json")
    assert refused.status_code == 400
    assert "adaptive_min_answers cannot change" in refused.json()["detail"]


def test_status_shows_the_adaptive_progress(api: APIClient, make_worker: Any) -> None:
    job = _publish(3, 2)  # minimum 2, maximum 5, target 0.8: easy items stop at 2, disputed ones go to 5
    _run_crowd(job, [make_worker() for _ in range(6)])
    compute_consensus(job=job, actor=Actor.system("test"), method="mv")
    status = api.get(f"/api/jobs/{job.pk}/status/").json()
    assert status["state"] == "completed"
    adaptive = status["adaptive"]
    assert adaptive.pop("skills_fitted_at") is None and adaptive.pop("budget_exhausted_at") is None
    assert adaptive == {
        "min_answers": 2,
        "max_answers": 5,
        "target": 0.8,
        "hits_collecting": 0,
        "hits_stopped_early": 3,
        "hits_at_maximum": 2,
        "extra_answers_requested": 6,
        "answers_saved": 9,
        "items_at_target": 3,  # the easy items (2 of 2); the disputed ones end at 3 of 5
        "skills_answers_at_fit": 0,
        "budget_step": None,  # no budget cap: nothing is held back
    }


def test_extra_answers_are_counted_above_what_each_hit_was_published_wanting(make_worker: Any) -> None:
    from tasks.selectors_adaptive import get_adaptive_progress

    job = _publish(3, 2)
    _run_crowd(job, [make_worker() for _ in range(6)])
    assert set(job.hits.filter(is_gold=False).values_list("assignments_published", flat=True)) == {2}
    before = get_adaptive_progress(job)
    assert before is not None and before.extra_answers_requested == 6
    # A pre-label model switched on later makes new Hits start at 1 answer; these Hits started at 2.
    Job.objects.filter(pk=job.pk).update(prelabel_model="m1")
    job.refresh_from_db()
    assert job.answers_per_hit == 1
    after = get_adaptive_progress(job)
    assert after is not None and after.extra_answers_requested == 6


def test_status_of_a_fixed_redundancy_job_has_no_adaptive_part(api: APIClient, make_published_job: Any) -> None:
    job = make_published_job(items=1)
    assert api.get(f"/api/jobs/{job.pk}/status/").json()["adaptive"] is None
