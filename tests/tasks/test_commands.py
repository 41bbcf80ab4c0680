"""Management commands: import_items, simulate_crowd, demo."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from tasks.models import (
    Answer,
    Assignment,
    AssignmentFlag,
    AssignmentState,
    ConsensusLabel,
    CostEntry,
    GoldGrade,
    HitState,
    Item,
    Job,
    JobBlock,
    JobState,
    Prediction,
    TaskKind,
)
from tasks.roles import FINANCE, OPS_MANAGER, REVIEWER
from tests.factories import JobFactory
from workforce.models import AuditEvent, Worker

pytestmark = pytest.mark.django_db

MANAGE = str(Path(settings.BASE_DIR) / "manage.py")


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_failing(*args: str) -> tuple[CommandError, str]:
    err = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command(*args, stdout=StringIO(), stderr=err)
    return caught.value, err.getvalue()


def manage(*args: str) -> subprocess.CompletedProcess[str]:
    """Run manage.py in a real process (only for failures that happen before any database access)."""
    return subprocess.run(
        [sys.executable, MANAGE, *args], capture_output=True, text=True, timeout=120, cwd=settings.BASE_DIR
    )


# --- import_items ---------------------------------------------------------------------------------


@pytest.fixture
def text_job(db: Any) -> Job:
    return JobFactory(task_kind=TaskKind.TEXT_CLASSIFICATION)


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    path = tmp_path / "reviews.csv"
    path.write_text("external_id,text,lang\nc-1,Lovely,en\nc-2,Schrecklich,de\nc-3,Okay,en\n", encoding="utf-8")
    return path


def test_import_items_imports_a_csv_file(text_job: Job, csv_file: Path) -> None:
    out, _ = run("import_items", "--job", str(text_job.pk), str(csv_file))
    assert f"Imported 3 new item(s) into job {text_job.pk} (0 unchanged, 0 new Hit(s))" in out
    assert dict(Item.objects.filter(job=text_job).values_list("external_id", "payload")) == {
        "c-1": {"text": "Lovely", "lang": "en"},
        "c-2": {"text": "Schrecklich", "lang": "de"},
        "c-3": {"text": "Okay", "lang": "en"},
    }
    event = AuditEvent.objects.get(action="items.imported")
    assert event.actor_label == "import_items command"
    assert event.after["file"] == "reviews.csv"


def test_import_items_imports_a_jsonl_file(text_job: Job, tmp_path: Path) -> None:
    path = tmp_path / "reviews.jsonl"
    path.write_text(
        '{"external_id": "j-1", "text": "first", "score": 4}\n\n{"id": 7, "text": "second"}\n', encoding="utf-8"
    )
    out, _ = run("import_items", "--job", str(text_job.pk), str(path))
    assert "Imported 2 new item(s)" in out
    assert dict(Item.objects.filter(job=text_job).values_list("external_id", "payload")) == {
        "j-1": {"text": "first", "score": 4},
        "7": {"text": "second"},
    }


def test_import_items_reads_the_format_option_over_the_extension(text_job: Job, tmp_path: Path) -> None:
    path = tmp_path / "items.data"
    path.write_text("external_id,text\nx-1,hello\n", encoding="utf-8")
    run("import_items", "--job", str(text_job.pk), str(path), "--format", "csv")
    assert Item.objects.get().external_id == "x-1"


def test_a_second_import_of_the_same_file_is_a_no_op(text_job: Job, csv_file: Path) -> None:
    run("import_items", "--job", str(text_job.pk), str(csv_file))
    events = AuditEvent.objects.count()
    out, _ = run("import_items", "--job", str(text_job.pk), str(csv_file))
    assert "Imported 0 new item(s)" in out
    assert "(3 unchanged" in out
    assert Item.objects.filter(job=text_job).count() == 3
    assert AuditEvent.objects.count() == events


def test_importing_into_a_published_job_builds_hits(make_published_job: Callable[..., Job], csv_file: Path) -> None:
    job = make_published_job(items=2)
    out, _ = run("import_items", "--job", str(job.pk), str(csv_file))
    assert "3 new Hit(s)" in out
    assert job.hits.filter(state=HitState.OPEN).count() == 5


def test_a_bad_file_fails_with_returncode_2_naming_the_line_and_writes_nothing(text_job: Job, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("external_id,text\nb-1,fine\nb-2,\nb-3,also fine\nb-1,again\n", encoding="utf-8")
    error, stderr = run_failing("import_items", "--job", str(text_job.pk), str(path))
    assert error.returncode == 2
    assert str(error) == f"2 bad row(s) in {path}; nothing was imported."
    assert f"{path}: line 3: a text job needs a non-empty 'text'" in stderr
    assert f"{path}: line 5: id 'b-1' already appears on line 2" in stderr
    assert not Item.objects.exists()


def test_a_bad_jsonl_line_is_named(text_job: Job, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"external_id": "a", "text": "ok"}\n{not json}\n["a list"]\n', encoding="utf-8")
    error, stderr = run_failing("import_items", "--job", str(text_job.pk), str(path))
    assert error.returncode == 2
    assert "line 2: not valid JSON" in stderr
    assert "line 3: each line must be a JSON object" in stderr
    assert not Item.objects.exists()


def test_a_file_that_is_not_utf8_is_refused(text_job: Job, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("external_id,text\nl-1,Gr\xfc\xdfe\n".encode("latin-1"))
    error, stderr = run_failing("import_items", "--job", str(text_job.pk), str(path))
    assert error.returncode == 2
    assert "not valid UTF-8" in stderr
    assert not Item.objects.exists()


def test_an_unknown_job_fails_with_returncode_2(csv_file: Path) -> None:
    error, _ = run_failing("import_items", "--job", "987654", str(csv_file))
    assert error.returncode == 2
    assert str(error) == "There is no job with id 987654."


def test_a_missing_file_fails_with_returncode_2(text_job: Job, tmp_path: Path) -> None:
    error, _ = run_failing("import_items", "--job", str(text_job.pk), str(tmp_path / "nope.csv"))
    assert error.returncode == 2
    assert "is not a readable file" in str(error)


def test_a_file_of_unknown_type_fails_with_returncode_2(text_job: Job, tmp_path: Path) -> None:
    path = tmp_path / "items.txt"
    path.write_text("external_id,text\nx,y\n", encoding="utf-8")
    error, _ = run_failing("import_items", "--job", str(text_job.pk), str(path))
    assert error.returncode == 2
    assert "Cannot tell the format" in str(error)


def test_import_items_without_a_job_exits_2_from_the_command_line() -> None:
    result = manage("import_items", "some.csv")
    assert result.returncode == 2
    assert "--job" in result.stderr


# --- simulate_crowd -------------------------------------------------------------------------------

SIM_ARGS = ("--items", "30", "--workers", "6", "--spammers", "1", "--seed", "3", "--json")


def simulate(*args: str) -> dict[str, Any]:
    out, _ = run("simulate_crowd", *args)
    return json.loads(out)


def answers_by_item(job_id: int) -> Counter[tuple[str, str]]:
    return Counter(
        (external_id, json.dumps(value))
        for external_id, value in Answer.objects.filter(job_id=job_id).values_list("item__external_id", "value")
    )


def test_simulate_crowd_prints_json_and_completes_the_job() -> None:
    result = simulate(*SIM_ARGS)
    assert {"job", "answers_submitted", "assignments_submitted", "items_complete", "seconds"} <= set(result)
    job = Job.objects.get(pk=result["job"])
    assert job.state == JobState.COMPLETED
    assert result["answers_submitted"] == 90 == Answer.objects.filter(job=job).count()
    assert result["assignments_submitted"] == 90
    assert result["items_complete"] == 30
    assert sum(result["by_kind"].values()) == 90
    assert result["by_kind"].get("spammer-random", 0) + result["by_kind"].get("spammer-constant", 0) > 0
    assert isinstance(result["seconds"], float)
    assert 0.0 <= result["majority_accuracy"] <= 1.0
    # Every item got its three answers from three different workers.
    per_item = Counter(Answer.objects.filter(job=job).values_list("item_id", "worker_id"))
    assert len(per_item) == 90
    assert max(per_item.values()) == 1


def test_two_runs_with_the_same_seed_give_the_same_answers() -> None:
    first = simulate(*SIM_ARGS)
    second = simulate(*SIM_ARGS)
    assert first["job"] != second["job"]
    for key in ("answers_submitted", "assignments_submitted", "items_complete", "by_kind", "majority_accuracy"):
        assert first[key] == second[key], key
    assert answers_by_item(first["job"]) == answers_by_item(second["job"])


def test_a_different_seed_gives_different_answers() -> None:
    first = simulate(*SIM_ARGS)
    other = simulate("--items", "30", "--workers", "6", "--spammers", "1", "--seed", "4", "--json")
    assert answers_by_item(first["job"]) != answers_by_item(other["job"])


def test_simulate_crowd_works_an_existing_published_job(make_published_job: Callable[..., Job]) -> None:
    job = make_published_job(items=4, redundancy=2)
    result = simulate("--job", str(job.pk), "--workers", "3", "--seed", "1", "--json")
    assert result["job"] == job.pk
    assert result["answers_submitted"] == 8
    assert set(Answer.objects.filter(job=job).values_list("value", flat=True)) <= {"pos", "neg", "neutral"}
    assert Job.objects.get(pk=job.pk).state == JobState.COMPLETED


def test_simulate_crowd_mixes_gold_into_pages_of_several_items() -> None:
    from tasks.models import AssignmentGoldItem, GoldGrade
    from tasks.selectors import list_page_items

    result = simulate(
        "--items", "60", "--items-per-hit", "5", "--gold-rate", "0.2", "--workers", "6", "--seed", "3", "--json"
    )
    job = Job.objects.get(pk=result["job"])
    assert job.items_per_hit == 5 and job.state == JobState.COMPLETED
    placed = AssignmentGoldItem.objects.filter(assignment__job=job).count()
    assert placed > 0 and result["gold_answers"] == placed == GoldGrade.objects.filter(job=job).count()
    # Pages show 5 items, except a Hit whose gold places nobody left could fill: it gave them up rather than
    # stay open (the job still completes).
    sizes = [len(list_page_items(a)) for a in job.assignments.all()]
    assert max(sizes) == 5 and sizes.count(5) > len(sizes) / 2
    assert Answer.objects.filter(job=job, item__is_gold=False).count() == 60 * 3


def test_simulate_crowd_prints_a_sentence_without_json() -> None:
    out, _ = run("simulate_crowd", "--items", "3", "--workers", "3", "--seed", "2")
    assert re.search(r"Job \d+: 9 answers in 9 assignments from 3 workers \(0 spammers\); 3/3 items complete", out)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--items", "0"), "--items must be at least 1."),
        (("--workers", "0"), "--workers must be at least 1."),
        (("--classes", "1"), "--classes must be at least 2."),
        (("--items-per-hit", "0"), "--items-per-hit must be between 1 and 100."),
        (("--workers", "6", "--spammers", "7"), "--spammers must be between 0 and --workers."),
        (("--workers", "6", "--spammers", "-1"), "--spammers must be between 0 and --workers."),
        (("--job", "987654"), "There is no job with id 987654."),
    ],
)
def test_simulate_crowd_bad_arguments_fail_with_returncode_2(args: tuple[str, ...], message: str) -> None:
    error, _ = run_failing("simulate_crowd", *args)
    assert error.returncode == 2
    assert str(error) == message
    assert not Job.objects.exists()


def test_simulate_crowd_refuses_a_job_that_is_not_published() -> None:
    job = JobFactory(state=JobState.DRAFT)
    error, _ = run_failing("simulate_crowd", "--job", str(job.pk))
    assert error.returncode == 2
    assert str(error) == f"Job {job.pk} is draft; publish it first."
    assert not Answer.objects.exists()


def test_simulate_crowd_bad_arguments_exit_2_from_the_command_line() -> None:
    result = manage("simulate_crowd", "--workers", "6", "--spammers", "7")
    assert result.returncode == 2
    assert "--spammers must be between 0 and --workers." in result.stderr
    unparsable = manage("simulate_crowd", "--items", "many")
    assert unparsable.returncode == 2
    assert "invalid int value" in unparsable.stderr


# --- demo -----------------------------------------------------------------------------------------

DEMO_JOB_NAMES = {
    "Demo: which shape is in the picture?",
    "Demo: is this product review positive or negative?",
}


def printed_logins(out: str) -> dict[str, str]:
    return dict(re.findall(r"username: (\S+)\s+password: (\S+)", out))


def test_demo_creates_accounts_with_working_printed_passwords_and_two_published_jobs() -> None:
    out, _ = run("demo")
    logins = printed_logins(out)
    assert set(logins) == {"ops", "finance", "reviewer", "worker1", "worker2", "worker3"}
    for username, password in logins.items():
        assert Client().login(username=username, password=password), username

    ops = get_user_model().objects.get(username="ops")
    assert ops.is_staff
    assert ops.groups.filter(name=OPS_MANAGER).exists()
    for username, group in (("finance", FINANCE), ("reviewer", REVIEWER)):
        user = get_user_model().objects.get(username=username)
        assert user.is_staff and not user.is_superuser and list(user.groups.values_list("name", flat=True)) == [group]
    finance = Client()
    finance.login(username="finance", password=logins["finance"])
    assert finance.get("/admin/tasks/costentry/dashboard/").status_code == 200
    assert finance.get("/admin/tasks/job/add/").status_code == 403  # finance changes nothing
    assert set(Worker.objects.filter(user__username__startswith="worker").values_list("user__username", flat=True)) == {
        "worker1",
        "worker2",
        "worker3",
    }

    jobs = Job.objects.filter(name__in=DEMO_JOB_NAMES)
    assert jobs.count() == 2
    assert set(jobs.values_list("state", flat=True)) == {JobState.PUBLISHED}
    assert {job.items.count() for job in jobs} == {60}


def test_a_demo_worker_logs_in_with_the_printed_password_and_sees_the_jobs() -> None:
    out, _ = run("demo")
    client = Client()
    assert client.login(username="worker1", password=printed_logins(out)["worker1"])
    page = client.get("/work/").content.decode()
    assert "Demo: which shape is in the picture?" in page
    assert "Demo: is this product review positive or negative?" in page
    ops = Client()
    assert ops.login(username="ops", password=printed_logins(out)["ops"])
    assert ops.get("/admin/tasks/job/").status_code == 200


def test_demo_accounts_log_in_through_the_login_page() -> None:
    out, _ = run("demo")
    response = Client().post(
        "/accounts/login/", {"username": "worker2", "password": printed_logins(out)["worker2"]}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/work/"
    assert response.status_code == 200


def test_running_demo_twice_does_not_duplicate_jobs_or_items() -> None:
    run("demo")
    hits_before = {job.name: job.hits.count() for job in Job.objects.all()}
    answers_before = Answer.objects.count()
    out, _ = run("demo")
    assert Job.objects.count() == 3
    assert Item.objects.count() == 120 + 90  # the worked job: 80 pictures and 10 gold
    assert {job.name: job.hits.count() for job in Job.objects.all()} == hits_before
    assert Answer.objects.count() == answers_before  # the worked job is worked once
    assert get_user_model().objects.filter(username__in=["ops", "worker1", "worker2", "worker3"]).count() == 4
    assert Worker.objects.filter(user__isnull=False).count() == 3 + 7  # and the simulated crowd
    for username, password in printed_logins(out).items():
        assert Client().login(username=username, password=password), username


def test_the_demo_has_a_job_a_simulated_crowd_worked_through_the_services() -> None:
    from tasks.demo_history import NAME

    run("demo")
    job = Job.objects.get(name=NAME)
    assert job.state == JobState.PUBLISHED  # about a quarter is left for the demo's own workers
    wanted = job.hits.filter(is_gold=False).count() * job.redundancy
    ordinary = Answer.objects.filter(job=job, item__is_gold=False).count()
    assert 0.6 * wanted <= ordinary < wanted
    assert GoldGrade.objects.filter(job=job).exists()
    assert list(JobBlock.objects.filter(job=job).values_list("worker__display_name", flat=True)) == ["sim-spam"]
    assert (
        ConsensusLabel.objects.filter(job=job).count()
        == Answer.objects.filter(job=job, item__is_gold=False).values("item").distinct().count()
    )
    assert CostEntry.objects.filter(job=job).exists() and job.budget_reserved <= job.budget_cap
    submitted = [t for t in Assignment.objects.filter(job=job).values_list("submitted_at", flat=True) if t]
    assert max(submitted) - min(submitted) > timedelta(hours=12)  # spread over the last day, for the charts
    assert max(submitted) < timezone.now()
    # the last hours' work and what gold flagged wait for a reviewer; the rest is approved and paid
    waiting = Assignment.objects.filter(job=job, state=AssignmentState.SUBMITTED)
    assert waiting.exists() and Assignment.objects.filter(job=job, state=AssignmentState.APPROVED).exists()
    assert AssignmentFlag.objects.filter(assignment__job=job).exists()
    # a simulated model predicted every ordinary item, for the active-learning view
    assert Prediction.objects.filter(job=job, item__is_gold=False).count() == job.items.filter(is_gold=False).count()
    assert not Assignment.objects.filter(job=job, flags__isnull=False, state=AssignmentState.APPROVED).exists()
    assert not get_user_model().objects.get(username="sim-ada").has_usable_password()


def test_the_demo_has_a_qualification_test_a_demo_worker_can_pass() -> None:
    from qualification.models import Grant, QualificationTest
    from qualification.services import start_attempt, submit_attempt
    from tasks.demo_data import shape_items_with_truth
    from tasks.demo_history import TEST_NAME

    run("demo", "--no-worked-job")
    run("demo", "--no-worked-job")
    test = QualificationTest.objects.get(name=TEST_NAME)  # once, however often the demo runs
    worker = Worker.objects.get(user__username="worker1")
    shapes = [shape for _, shape in shape_items_with_truth(4, seed=99)]
    attempt = submit_attempt(
        attempt=start_attempt(test=test, worker=worker),
        worker=worker,
        answers={f"q{n}": shape for n, shape in enumerate(shapes, start=1)},
    )
    assert attempt.score == 100 and Grant.objects.filter(worker=worker, test=test).exists()


def test_the_demo_can_leave_out_the_worked_job() -> None:
    run("demo", "--no-worked-job")
    assert Job.objects.count() == 2 and not Answer.objects.exists()


def test_simulate_crowd_with_the_default_block_policy_blocks_spammers_and_excludes_their_answers() -> None:
    result = simulate(
        "--items", "150", "--classes", "4", "--workers", "12", "--spammers", "3", "--gold-rate", "0.2",
        "--block-policy", "default", "--seed", "1", "--json",
    )  # fmt: skip
    job = Job.objects.get(pk=result["job"])
    assert job.state == JobState.COMPLETED
    blocked = set(JobBlock.objects.filter(job=job).values_list("worker__external_id", flat=True))
    assert result["spammers_blocked"] + result["honest_blocked"] == len(blocked) > 0
    assert result["spammers_blocked"] >= 1 and result["gold_answers_per_block"] >= 3  # at least block_after_gold
    assert result["gold_items"] == 30 and result["gold_answers"] > 0
    # Blocked workers' ordinary answers were returned and answered again by others: every ordinary item
    # still has three answers from workers who are not blocked.
    kept = Counter(
        Answer.objects.filter(job=job, item__is_gold=False)
        .exclude(worker__external_id__in=blocked)
        .values_list("item_id", flat=True)
    )
    assert len(kept) == 150 and set(kept.values()) == {3}
    assert result["accuracy_after_exclusion"] >= result["accuracy_before_exclusion"]


def test_demo_prints_the_login_link_of_the_server_it_is_told_about() -> None:
    out, _ = run("demo")
    assert "Log in at http://127.0.0.1:8000/accounts/login/" in out
    out, _ = run("demo", "--url", "http://0.0.0.0:8765/")
    assert "Log in at http://0.0.0.0:8765/accounts/login/" in out
