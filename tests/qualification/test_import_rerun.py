"""Ops audit finding 11: running import_mturk_qualification again on the same files is a no-op, and other
files under a current test's name are refused with exit code 2 naming that test."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from qualification.models import QualificationTest, Question
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
DATA = Path("/work/shared/data/mturk")
FORM = DATA / "p808_qualification_questionform.xml"
KEY = DATA / "p808_qualification_answer_key.xml"
FILES = ("--questions", str(FORM), "--answers", str(KEY))


def run(*args: str) -> str:
    out = StringIO()
    call_command("import_mturk_qualification", *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def test_importing_the_same_files_again_changes_nothing_and_says_so() -> None:
    first = run(*FILES, "--name", "P.808 screening")
    test = QualificationTest.objects.get()
    assert first == f"Created qualification test {test.pk} “P.808 screening” with 2 question(s)."
    events = AuditEvent.objects.count()
    again = run(*FILES, "--name", "P.808 screening")
    assert again == (
        f"Qualification test {test.pk} “P.808 screening” already holds these 2 question(s) and settings; "
        "nothing was imported."
    )
    assert QualificationTest.objects.count() == 1 and Question.objects.count() == 2
    assert AuditEvent.objects.count() == events


def test_a_test_switched_off_since_is_still_the_same_import() -> None:
    run(*FILES, "--name", "P.808 screening")
    QualificationTest.objects.update(is_active=False)
    assert "nothing was imported" in run(*FILES, "--name", "P.808 screening")
    assert QualificationTest.objects.count() == 1


def test_other_settings_under_the_same_name_are_refused_naming_the_existing_test() -> None:
    run(*FILES, "--name", "P.808 screening")
    test = QualificationTest.objects.get()
    with pytest.raises(CommandError) as caught:
        run(*FILES, "--name", "P.808 screening", "--pass-score", "100")
    assert caught.value.returncode == 2
    assert f"Qualification test {test.pk} (version 1) is already called “P.808 screening”" in str(caught.value)
    assert QualificationTest.objects.count() == 1


def test_the_same_files_under_another_name_make_another_test() -> None:
    run(*FILES, "--name", "P.808 screening")
    assert run(*FILES, "--name", "P.808 screening B").startswith("Created qualification test")
    assert QualificationTest.objects.count() == 2
