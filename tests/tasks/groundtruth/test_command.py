"""``import_groundtruth``: the real files in, JSON out, exit code 2 with one sentence on bad input."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tasks.models import Job
from tests.tasks.groundtruth.data import CUSTOM_MANIFEST, IC_ARCHIVE, IC_MANIFEST, IC_TRUTH

pytestmark = pytest.mark.django_db


def run(*args: str) -> dict:
    out = StringIO()
    call_command("import_groundtruth", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_it_imports_the_birds_job_with_worker_responses_and_reports_both_accuracies() -> None:
    data = run(
        "--new-job", "birds", "--manifest", str(IC_MANIFEST), "--worker-responses", str(IC_ARCHIVE),
        "--gold", str(IC_TRUTH), "--gold-share", "0",
    )  # fmt: skip
    assert set(data) >= {"job", "items", "assignments", "workers", "groundtruth_consensus_labels"}
    assert data["items"]["created"] == 302 and data["assignments"]["created"] == 1510
    assert data["workers"] == {"created": 97, "total": 97}
    assert data["groundtruth_consensus_labels"]["created"] == 302
    assert data["accuracy"]["groundtruth"] == pytest.approx(272 / 302, abs=1e-4)
    assert data["accuracy"]["ours"] >= data["accuracy"]["groundtruth"]
    again = run("--job", str(data["job"]["id"]), "--manifest", str(IC_MANIFEST), "--worker-responses", str(IC_ARCHIVE))
    assert again["items"]["created"] == 0 and again["assignments"] == {
        "created": 0,
        "unchanged": 1510,
        "answers_created": 0,
    }


def test_it_imports_from_an_extracted_directory_skipping_appledouble_files(tmp_path: Path) -> None:
    import tarfile

    with tarfile.open(IC_ARCHIVE) as archive:
        archive.extractall(tmp_path, filter="data")
    assert list(tmp_path.rglob("._*"))
    data = run("--new-job", "birds", "--manifest", str(IC_MANIFEST), "--worker-responses", str(tmp_path))
    assert data["assignments"]["created"] == 1510


def test_a_custom_task_imports_without_worker_responses() -> None:
    data = run("--new-job", "legal", "--manifest", str(CUSTOM_MANIFEST))
    assert data["items"]["created"] == 296
    assert data["groundtruth_consensus_labels"]["task_type"] == "groundtruth/custom"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--job", "999", "--manifest", str(IC_MANIFEST)], "There is no job with id 999."),
        (["--new-job", "x", "--manifest", "/nonexistent.manifest"], "is not a readable file."),
        (["--new-job", "x", "--manifest", str(IC_TRUTH)], "is not a Ground Truth manifest"),
        (["--new-job", "x", "--manifest", str(IC_MANIFEST), "--worker-responses", str(IC_TRUTH)], "nor a tar"),
        (["--new-job", "x", "--manifest", str(IC_MANIFEST), "--gold-share", "2"], "between 0 and 1"),
        (["--new-job", "x", "--manifest", str(IC_MANIFEST), "--label-attribute", "nope"], "label attribute 'nope'"),
    ],
)
def test_bad_input_exits_2_with_one_sentence_and_writes_nothing(args: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message) as caught:
        call_command("import_groundtruth", *args)
    assert caught.value.returncode == 2
    assert str(caught.value).count(". ") == 0
    assert not Job.objects.exists()


def test_a_worker_response_archive_cut_short_exits_2_naming_it(tmp_path: Path) -> None:
    cut = tmp_path / "cut.tar.gz"
    data = IC_ARCHIVE.read_bytes()
    cut.write_bytes(data[: len(data) // 2])  # a download that stopped half way
    args = ["--new-job", "x", "--manifest", str(IC_MANIFEST), "--worker-responses", str(cut)]
    with pytest.raises(CommandError, match=r"cut\.tar\.gz is a truncated or damaged archive") as caught:
        call_command("import_groundtruth", *args)
    assert caught.value.returncode == 2
    assert not Job.objects.exists()
