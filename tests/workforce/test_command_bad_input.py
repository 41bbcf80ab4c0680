"""audit_export: an output it cannot write exits 2 with one sentence, and the export is not audited."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from workforce.audit import Actor, record_audit_event
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db


def export_fails(output: str) -> str:
    with pytest.raises(CommandError) as caught:
        call_command("audit_export", "--since", "2020-01-01", "--output", output, stdout=StringIO(), stderr=StringIO())
    assert caught.value.returncode == 2
    return str(caught.value)


def test_a_missing_directory_exits_2() -> None:
    assert export_fails("/nonexistent/x") == "Cannot write /nonexistent/x (No such file or directory)."
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_a_directory_as_output_exits_2(tmp_path: Path) -> None:
    assert export_fails(str(tmp_path)) == f"Cannot write {tmp_path} (Is a directory)."
    assert not AuditEvent.objects.filter(action="audit.exported").exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_exits_2_and_is_not_audited() -> None:
    record_audit_event(actor=Actor.system("tests"), action="test.event", object_type="x", object_id="1")
    assert export_fails("/dev/full") == "Cannot write /dev/full (No space left on device)."
    assert not AuditEvent.objects.filter(action="audit.exported").exists()
    assert Path("/dev/full").exists()
