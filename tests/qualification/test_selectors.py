"""qualification.selectors: grant scores across versions, requirement checks, the worker's test list."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone

from qualification.models import QualificationTest, TaskKind
from qualification.selectors import (
    list_tests_for_worker,
    unmet_requirements_for_worker,
    validate_job_requirements,
    worker_grant_scores,
)
from qualification.services import create_new_version, revoke_grant, start_attempt, submit_attempt
from tests.factories import WorkerFactory
from tests.qualification.conftest import OPS, RIGHT
from workforce.models import Worker

pytestmark = pytest.mark.django_db
MakeTest = Callable[..., QualificationTest]


def pass_test(test: QualificationTest, worker: Worker, answers: dict[str, str] = RIGHT) -> None:
    now = timezone.now()
    attempt = start_attempt(test=test, worker=worker, now=now)
    submit_attempt(attempt=attempt, worker=worker, answers=answers, now=now)


def test_task_kind_values_are_the_tasks_apps_label_kinds() -> None:
    from tasks.models import SHAPE_KINDS
    from tasks.models import TaskKind as TasksTaskKind

    # Qualification tests ask label questions; drawing kinds are graded in the tasks app (by geometry).
    label_kinds = {k: v for k, v in TasksTaskKind.choices if k not in SHAPE_KINDS}
    assert dict(TaskKind.choices) == label_kinds


def test_grant_scores_are_keyed_by_every_version_of_the_family(make_test: MakeTest, worker: Worker) -> None:
    v1 = make_test()
    pass_test(v1, worker, {**RIGHT, "q4": "0"})
    v2 = create_new_version(test=v1, actor=OPS)
    v3 = create_new_version(test=v2, actor=OPS)
    other = make_test(name="Other")
    assert worker_grant_scores(worker) == {v1.pk: 75.0, v2.pk: 75.0, v3.pk: 75.0}
    pass_test(v3, worker)
    assert worker_grant_scores(worker) == {v1.pk: 100.0, v2.pk: 100.0, v3.pk: 100.0}
    assert other.pk not in worker_grant_scores(worker)
    assert worker_grant_scores(WorkerFactory()) == {}


def test_revoked_grants_do_not_count(make_test: MakeTest, worker: Worker) -> None:
    test = make_test()
    pass_test(test, worker)
    revoke_grant(grant=test.grants.get(), actor=OPS, reason="x")
    assert worker_grant_scores(worker) == {}


def test_a_requirement_naming_an_old_version_is_met_by_a_grant_on_a_newer_one(
    make_test: MakeTest, worker: Worker
) -> None:
    v1 = make_test(name="Cats")
    v2 = create_new_version(test=v1, actor=OPS)
    reqs = [{"kind": "test", "test": v1.pk, "min_score": 80}, {"kind": "not_blocked"}]
    assert unmet_requirements_for_worker(worker=worker, requirements=reqs, approved_assignments=0) == [
        "You need to pass the qualification test “Cats”."
    ]
    pass_test(v2, worker)
    assert unmet_requirements_for_worker(worker=worker, requirements=reqs, approved_assignments=0) == []
    worker.is_blocked = True
    assert unmet_requirements_for_worker(worker=worker, requirements=reqs, approved_assignments=0) == [
        "Your account is blocked from this work."
    ]


def test_job_requirements_naming_a_missing_test_are_invalid(make_test: MakeTest) -> None:
    test = make_test()
    assert validate_job_requirements([{"kind": "test", "test": test.pk}]) == []
    assert validate_job_requirements([{"kind": "test", "test": test.pk + 100}]) == [
        f"There is no qualification test with id {test.pk + 100}."
    ]
    assert validate_job_requirements([{"kind": "x"}])[0].startswith("Requirement 1 has unknown kind")


def test_the_list_shows_current_active_tests_with_the_workers_status(make_test: MakeTest, worker: Worker) -> None:
    passed = make_test(name="A passed")
    failed = make_test(name="B failed", retry_delay=timedelta(hours=3))
    make_test(name="C inactive", is_active=False)
    fresh = make_test(name="D fresh")
    pass_test(passed, worker)
    pass_test(failed, worker, {"q1": "neg"})
    cards = {c.test.name: c for c in list_tests_for_worker(worker)}
    assert sorted(cards) == ["A passed", "B failed", "D fresh"]
    assert cards["A passed"].best_score == 100.0 and not cards["A passed"].can_start
    assert cards["B failed"].best_score is None and not cards["B failed"].can_start
    assert cards["B failed"].allowance.attempts_left == 2
    assert cards["B failed"].allowance.retry_at is not None
    assert cards["D fresh"].can_start and cards["D fresh"].allowance.attempts_left == 3
    assert cards["D fresh"].test.pk == fresh.pk


def test_question_images_may_be_data_uris_but_links_only_http(make_test: MakeTest) -> None:
    from qualification.selectors import questions_for_page
    from qualification.specs import QuestionSpec

    pixel = "data:image/png;base64,iVBORw0KGgo="
    specs = [
        QuestionSpec(identifier="a", prompt="Which?", payload={"image_url": pixel}, accepted=("pos",)),
        QuestionSpec(identifier="b", prompt="Which?", payload={"image_url": "javascript:alert(1)"}, accepted=("pos",)),
        QuestionSpec(
            identifier="c",
            prompt="Which?",
            payload={"media": [{"element": "Binary", "type": "image", "url": "data:text/html,<b>x</b>"}]},
            accepted=("pos",),
        ),
    ]
    page = {q.identifier: q for q in questions_for_page(make_test(questions=specs))}
    assert page["a"].image_url == pixel  # as task items may show (the demo's pictures are data URIs)
    assert page["b"].image_url == ""
    assert not any(str(m.get("url", "")).startswith("data:") for m in page["c"].media)  # media links: http(s) only
