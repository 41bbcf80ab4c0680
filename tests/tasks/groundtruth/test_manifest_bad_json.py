"""Ground Truth files whose JSON nests too deeply or holds numbers a database cannot store are refused with a
sentence naming the line (exit 2), never a traceback and never a half-written job."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tasks.models import Item, Job
from tests.tasks.groundtruth.data import IC_MANIFEST

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("bad", "said"),
    [
        ('{"source-ref": "s3://b/x.jpg", "deep": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply"),
        ('{"source-ref": "s3://b/x.jpg", "deep": ' + "[" * 150 + "]" * 150 + "}", "nested too deeply"),
        ('{"source-ref": "s3://b/x.jpg", "score": NaN}', "NaN"),
        ('{"source-ref": "s3://b/x.jpg", "score": 1e999}', "too large"),
    ],
    ids=["recursion", "deeper-than-the-limit", "nan", "overflow"],
)
def test_a_manifest_line_we_cannot_read_exits_2_naming_it(tmp_path: Path, bad: str, said: str) -> None:
    lines = [*IC_MANIFEST.read_text().splitlines()[:3], bad]
    manifest = tmp_path / "output.manifest"
    manifest.write_text("\n".join(lines) + "\n")
    with pytest.raises(CommandError) as refused:
        call_command("import_groundtruth", "--new-job", "birds", "--manifest", str(manifest), stdout=StringIO())
    assert refused.value.returncode == 2
    assert "line 4" in str(refused.value) and said in str(refused.value)
    assert not Job.objects.exists() and not Item.objects.exists()


def test_a_gold_file_nested_too_deeply_exits_2(tmp_path: Path) -> None:
    gold = tmp_path / "gold.json"
    gold.write_text('{"a": ' + "[" * 5000 + "]" * 5000 + "}")
    with pytest.raises(CommandError, match="gold file") as refused:
        call_command(
            "import_groundtruth",
            "--new-job",
            "birds",
            "--manifest",
            str(IC_MANIFEST),
            "--gold",
            str(gold),
            stdout=StringIO(),
        )
    assert refused.value.returncode == 2 and not Job.objects.exists()
