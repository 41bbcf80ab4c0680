"""The README's client example, run as written against a live test server (a simulated crowd answers
between its two blocks)."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import pytest
from rest_framework.authtoken.models import Token

from tasks.models import DatasetVersion, Job
from tasks.services.simulation import simulate_crowd

README = Path(__file__).resolve().parents[3] / "README.md"
HEADING = "## Console: REST API, exports and dataset versions"


def example_blocks() -> list[str]:
    section = README.read_text().split(HEADING, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_readme_has_the_two_blocks() -> None:
    blocks = example_blocks()
    assert len(blocks) == 2
    assert "/publish/" in blocks[0] and "/export/" in blocks[1]


@pytest.mark.django_db(transaction=True)
def test_the_readme_client_runs_a_job_from_import_to_export(
    live_server: Any, ops_manager: Any, tmp_path: Path, settings: Any
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    first, second = example_blocks()
    output = tmp_path / "labels.csv"
    scope: dict[str, Any] = {
        "BASE": live_server.url,
        "TOKEN": Token.objects.create(user=ops_manager).key,
        "OUTPUT": str(output),
    }
    exec(compile(first, "README block 1", "exec"), scope)
    job = Job.objects.get(pk=scope["job"]["id"])
    assert job.state == "published" and job.items.count() == 20
    simulate_crowd(job=job, workers=4, spammers=0, seed=7)
    exec(compile(second, "README block 2", "exec"), scope)
    rows = list(csv.DictReader(output.open()))
    assert len(rows) == 20 and {r["label"] for r in rows} <= {"pos", "neg", "neutral"}
    assert all(r["cost_usd"] for r in rows)
    assert scope["version"]["number"] == 1 and DatasetVersion.objects.get(job=job).row_count == 20
    assert scope["confident"]
