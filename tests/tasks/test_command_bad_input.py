"""Bad input to simulate_crowd, export_labels and recount_tallies: exit code 2, one sentence, nothing written."""

from __future__ import annotations

import json
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any, cast

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tasks.models import Answer, Assignment, Job, JobState, TaskKind
from tasks.services.collection import submit_assignment
from tasks.services.pool import assign_next_hit
from tests.factories import JobFactory
from workforce.models import AuditEvent, Worker

pytestmark = pytest.mark.django_db

TOO_BIG_ID = "99999999999999999999999"


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def fails(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        run(*args)
    assert caught.value.returncode == 2
    return str(caught.value)


def sim_workers() -> int:
    return Worker.objects.filter(external_id__startswith="sim-").count()


# --- simulate_crowd -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--classes", "100000", "--items", "2"), "--classes must be at most 100."),
        (("--items", "1000001"), "--items must be at most 1000000."),
        (("--workers", "1001"), "--workers must be at most 1000."),
        (("--redundancy", "51"), "--redundancy must be at most 50."),
        (("--seed", "-1"), f"--seed must be between 0 and {2**63 - 1}."),
        (("--seed", TOO_BIG_ID), f"--seed must be between 0 and {2**63 - 1}."),
        (("--items", "2", "--max-seconds", "nan"), "--max-seconds must be a positive number of seconds."),
        (("--items", "2", "--max-seconds", "inf"), "--max-seconds must be a positive number of seconds."),
        (("--items", "2", "--max-seconds", "-1"), "--max-seconds must be a positive number of seconds."),
    ],
)
def test_simulate_crowd_refuses_out_of_range_arguments_before_writing(args: tuple[str, ...], message: str) -> None:
    assert fails("simulate_crowd", "--workers", "2", *args) == message
    assert not Job.objects.exists()
    assert sim_workers() == 0


def test_simulate_crowd_refuses_a_shape_job_before_writing() -> None:
    job = cast(Job, JobFactory(task_kind=TaskKind.IMAGE_BOXES, state=JobState.PUBLISHED))
    assert fails("simulate_crowd", "--job", str(job.pk)) == (
        f"Job {job.pk} asks for shapes; simulated workers only answer classification jobs."
    )
    assert sim_workers() == 0 and not Assignment.objects.exists()


def _real_workers_finish_two_items(job: Job, make_worker: Callable[..., Worker]) -> None:
    """Two real workers answer two of the job's items (redundancy 2): those items are complete before the run."""
    for worker in (make_worker(), make_worker()):
        for _ in range(2):
            assignment = assign_next_hit(job=job, worker=worker)
            item = assignment.hit.items.order_by("id")[0]
            submit_assignment(assignment=assignment, worker=worker, answers={item.pk: "pos"})


def test_simulate_crowd_works_a_job_that_real_workers_have_partly_answered(
    make_published_job: Callable[..., Job], make_worker: Callable[..., Worker]
) -> None:
    job = make_published_job(items=4, redundancy=2)
    _real_workers_finish_two_items(job, make_worker)
    real = set(Answer.objects.filter(job=job).values_list("pk", flat=True))
    assert len(real) == 4
    result = json.loads(run("simulate_crowd", "--job", str(job.pk), "--workers", "3", "--seed", "1", "--json"))
    assert result["job"] == job.pk
    assert result["answers_submitted"] == 4  # the two items nobody had answered, twice each
    assert Answer.objects.filter(job=job).count() == 8
    assert Job.objects.get(pk=job.pk).state == JobState.COMPLETED
    for key in ("majority_accuracy", "accuracy_before_exclusion", "accuracy_after_exclusion"):
        assert result[key] is None or 0.0 <= result[key] <= 1.0, key


def test_simulate_crowd_works_the_demo_job_that_a_crowd_has_already_worked() -> None:
    from tasks.demo_history import create_worked_demo_job
    from workforce.audit import Actor

    job = create_worked_demo_job(actor=Actor.system("tests"), created_by=None)
    assert job is not None and job.state == JobState.PUBLISHED
    before = Answer.objects.filter(job=job).count()
    result = json.loads(run("simulate_crowd", "--job", str(job.pk), "--workers", "6", "--seed", "2", "--json"))
    assert result["answers_submitted"] > 0
    assert Answer.objects.filter(job=job).count() == before + result["answers_submitted"]


def test_a_simulation_that_fails_part_way_leaves_nothing_behind(
    make_published_job: Callable[..., Job], make_worker: Callable[..., Worker], monkeypatch: pytest.MonkeyPatch
) -> None:
    job = make_published_job(items=4, redundancy=2)
    _real_workers_finish_two_items(job, make_worker)

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("crashed after the crowd's work")

    monkeypatch.setattr("tasks.services.simulation._review_and_label", crash)
    with pytest.raises(RuntimeError):
        run("simulate_crowd", "--job", str(job.pk), "--workers", "3", "--seed", "1")
    assert Answer.objects.filter(job=job).count() == 4 and Assignment.objects.filter(job=job).count() == 4
    assert sim_workers() == 0
    with pytest.raises(RuntimeError):
        run("simulate_crowd", "--items", "3", "--workers", "2")
    assert Job.objects.count() == 1


# --- export_labels --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "5", "-0.1"])
def test_export_labels_refuses_a_min_confidence_outside_0_to_1(tmp_path: Path, value: str) -> None:
    job = cast(Job, JobFactory())
    out = tmp_path / "labels.csv"
    message = fails(
        "export_labels", "--job", str(job.pk), "--format", "csv", "--output", str(out), f"--min-confidence={value}"
    )
    assert message == "--min-confidence must be a number between 0 and 1."
    assert list(tmp_path.iterdir()) == []
    assert not AuditEvent.objects.filter(action="labels.exported").exists()


def test_export_labels_refuses_a_directory_as_output(tmp_path: Path) -> None:
    job = cast(Job, JobFactory())
    target = tmp_path / "existing"
    target.mkdir()
    message = fails("export_labels", "--job", str(job.pk), "--format", "csv", "--output", str(target))
    assert message == f"{target} is a directory; name the file to write."
    assert [p.name for p in tmp_path.iterdir()] == ["existing"] and list(target.iterdir()) == []
    assert not AuditEvent.objects.filter(action="labels.exported").exists()


# --- recount_tallies ------------------------------------------------------------------------------


def test_recount_tallies_refuses_an_id_too_large_for_the_database(make_published_job: Callable[..., Job]) -> None:
    job = make_published_job(items=1)
    events = AuditEvent.objects.count()
    assert fails("recount_tallies", "--job", str(job.pk), "--job", TOO_BIG_ID) == f"No job {TOO_BIG_ID}."
    assert fails("recount_tallies", "--job", "-5") == "No job -5."
    assert AuditEvent.objects.count() == events
