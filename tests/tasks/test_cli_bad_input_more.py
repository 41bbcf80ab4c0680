"""More bad input to the commands and the job/budget forms: an impossible or out-of-range time, a checkpoint or
count past a 64-bit integer, a negative seed, a file that is not UTF-8 or not there, a currency that is not
a code. Commands exit with code 2 and one sentence naming the option or file; forms and the API refuse with
an error on the field; nothing is written."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from tasks.models import Job, MonthlyBudget
from tests.factories import JobFactory
from tests.tasks.aggregation.test_replay_command import files
from tests.tasks.groundtruth.data import IC_MANIFEST
from tests.tasks.test_admin import job_form_data
from workforce.audit import parse_checkpoint

pytestmark = pytest.mark.django_db

HUGE = str(10**30)
DIGEST = "ab" * 32


def fails(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        call_command(*args, stdout=StringIO(), stderr=StringIO())
    assert caught.value.returncode == 2
    message = str(caught.value)
    assert "Traceback" not in message and "Errno" not in message and "codec" not in message
    return message


# --- times ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("since", ["2026-02-30T00:00:00", "2026-13-01T00:00:00Z", "0001-01-01T00:00+05:00"])
def test_reconcile_mturk_refuses_an_impossible_since(since: str) -> None:
    job = JobFactory()
    message = fails("reconcile_mturk", "--job", str(job.pk), "--opening-balance", "10", "--since", since)
    assert message.startswith("--since must be an ISO date and time")


@pytest.mark.parametrize("since", ["0001-01-01T00:00+05:00", "9999-12-31T23:59-05:00"])
def test_audit_export_refuses_a_since_outside_the_years_utc_can_name(since: str) -> None:
    message = fails("audit_export", "--since", since)
    assert message.startswith(f"--since {since!r} falls outside the years 1 to 9999 in UTC")


def test_audit_export_still_takes_an_offset_inside_the_years() -> None:
    err = StringIO()
    call_command("audit_export", "--since", "0001-01-01T00:00-05:00", stdout=StringIO(), stderr=err)
    assert "since 0001-01-01T05:00:00+00:00" in err.getvalue()


# --- audit checkpoints ----------------------------------------------------------------------------


@pytest.mark.parametrize("count", [str(2**63), "9" * 30, "0" * 25 + str(2**63)])
def test_audit_verify_refuses_a_checkpoint_count_past_a_64_bit_integer(count: str) -> None:
    message = fails("audit_verify", "--checkpoint", f"{count}:{DIGEST}")
    assert message.startswith(f"A checkpoint counts at most {2**63 - 1} events")


def test_the_largest_checkpoint_count_is_still_read() -> None:
    assert parse_checkpoint(f"{2**63 - 1}:{DIGEST}") == (2**63 - 1, DIGEST)
    assert parse_checkpoint(f"{'0' * 25}7:{DIGEST}") == (7, DIGEST)
    with pytest.raises(ValueError, match="A checkpoint is written"):
        parse_checkpoint(f"000:{DIGEST}")


# --- replay and bench_vision ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--budget", HUGE], "the budget must be at most the 80 answers recorded"),
        (["--max", HUGE], "the maximum number of answers must be at most 1000"),
        (["--min", HUGE], "the minimum number of answers must be at most 1000"),
        (["--min", "2", "--max", "1001"], "the maximum number of answers must be at most 1000"),
        (["--seed", "-1"], "--seed must be 0 or a positive whole number"),
    ],
)
def test_replay_refuses_counts_past_what_it_can_replay(tmp_path: Path, args: list[str], needle: str) -> None:
    answers, gold = files(tmp_path)
    message = fails("replay", "--answers", answers, "--gold", gold, "--policy", "adaptive", *args)
    assert needle in message


def test_replay_still_takes_a_budget_of_every_recorded_answer(tmp_path: Path) -> None:
    answers, gold = files(tmp_path)
    out = StringIO()
    call_command("replay", "--answers", answers, "--gold", gold, "--policy", "adaptive", "--budget", "80", stdout=out)
    assert "budget 80" in out.getvalue()


def test_bench_vision_refuses_a_negative_seed() -> None:
    assert fails("bench_vision", "--images", "1", "--seed", "-1") == "--seed must be 0 or a positive whole number."


# --- import_groundtruth ---------------------------------------------------------------------------


def test_import_groundtruth_names_a_manifest_that_is_not_utf8(tmp_path: Path) -> None:
    manifest = tmp_path / "output.manifest"
    manifest.write_bytes(b'{"source-ref": "s3://b/\xff.jpg"}\n')
    message = fails("import_groundtruth", "--new-job", "x", "--manifest", str(manifest))
    assert message.startswith(f"--manifest {manifest} is not UTF-8 text")
    assert not Job.objects.exists()


def test_import_groundtruth_names_a_gold_file_that_is_not_utf8(tmp_path: Path) -> None:
    gold = tmp_path / "gold.json"
    gold.write_bytes(b"\xff\xfe{}")
    message = fails("import_groundtruth", "--new-job", "x", "--manifest", str(IC_MANIFEST), "--gold", str(gold))
    assert message.startswith(f"--gold {gold} is not UTF-8 text")
    assert not Job.objects.exists()


def test_import_groundtruth_names_a_missing_gold_file(tmp_path: Path) -> None:
    gold = tmp_path / "nowhere.json"
    message = fails("import_groundtruth", "--new-job", "x", "--manifest", str(IC_MANIFEST), "--gold", str(gold))
    assert message == f"--gold {gold} does not exist."
    assert not Job.objects.exists()


# --- currency -------------------------------------------------------------------------------------


@pytest.mark.parametrize("currency", ["$$$", "usd", "US"])
def test_the_job_form_refuses_a_currency_that_is_not_a_code(ops_client: Client, currency: str) -> None:
    response = ops_client.post(reverse("admin:tasks_job_add"), job_form_data(currency=currency))
    assert response.status_code == 200
    assert "three capital letters" in " ".join(response.context["adminform"].form.errors["currency"])
    assert not Job.objects.exists()


def test_the_monthly_budget_form_refuses_a_currency_that_is_not_a_code(ops_client: Client) -> None:
    response = ops_client.post(
        reverse("admin:tasks_monthlybudget_add"), {"month": "2026-11-01", "cap": "5", "currency": "$$$"}
    )
    assert response.status_code == 200 and "three capital letters" in response.content.decode()
    assert not MonthlyBudget.objects.exists()


def test_the_api_refuses_a_currency_that_is_not_a_code(api: APIClient) -> None:
    body: dict[str, Any] = {
        "name": "t",
        "task_kind": "text_classification",
        "labels": ["a", "b"],
        "currency": "$$$",
    }
    response = api.post("/api/jobs/", body, format="json")
    assert response.status_code == 400
    assert "three capital letters" in " ".join(response.json()["currency"])
    assert not Job.objects.exists()
    assert api.post("/api/jobs/", {**body, "currency": "EUR"}, format="json").status_code == 201
