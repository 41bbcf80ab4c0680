"""import_mturk_qualification and export_mturk_qualification."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from qualification.models import QualificationTest
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
DATA = Path("/work/shared/data/mturk")
FORM = DATA / "p808_qualification_questionform.xml"
KEY = DATA / "p808_qualification_answer_key.xml"


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_import_then_export_writes_files_that_import_back(tmp_path: Path) -> None:
    out = run(
        "import_mturk_qualification",
        "--questions",
        str(FORM),
        "--answers",
        str(KEY),
        "--name",
        "P808",
        "--pass-score",
        "100",
        "--max-attempts",
        "2",
    )
    test = QualificationTest.objects.get()
    assert out.strip() == f"Created qualification test {test.pk} “P808” with 2 question(s)."
    assert (test.pass_score, test.max_attempts) == (100, 2)
    assert AuditEvent.objects.filter(action="qualification.test_created", object_id=str(test.pk)).count() == 1
    run("export_mturk_qualification", "--test", str(test.pk), "--out-dir", str(tmp_path))
    form, key = tmp_path / "p808-v1_questionform.xml", tmp_path / "p808-v1_answer_key.xml"
    run("import_mturk_qualification", "--questions", str(form), "--answers", str(key), "--name", "P808 again")
    again = QualificationTest.objects.exclude(pk=test.pk).get()
    assert list(again.questions.values_list("identifier", "accepted")) == [("1_gender", ["m"]), ("2_language", [])]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--questions", "/nonexistent.xml", "--answers", str(KEY)], "/nonexistent.xml is not a readable file."),
        (["--questions", str(KEY), "--answers", str(KEY)], "Expected a <QuestionForm> document but found <AnswerKey>."),
        (
            ["--questions", str(FORM), "--answers", str(FORM)],
            "Expected a <AnswerKey> document but found <QuestionForm>.",
        ),
    ],
)
def test_bad_input_fails_with_returncode_2_and_one_sentence(args: list[str], message: str) -> None:
    with pytest.raises(CommandError) as caught:
        run("import_mturk_qualification", *args, "--name", "X")
    assert (caught.value.returncode, str(caught.value)) == (2, message)
    assert not QualificationTest.objects.exists()


def test_exporting_a_missing_test_fails_with_returncode_2(tmp_path: Path) -> None:
    with pytest.raises(CommandError) as caught:
        run("export_mturk_qualification", "--test", "999", "--out-dir", str(tmp_path))
    assert (caught.value.returncode, str(caught.value)) == (2, "There is no qualification test with id 999.")
