"""python manage.py export_mturk_qualification --test ID --out-dir DIR"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from qualification.errors import QualificationError
from qualification.models import QualificationTest
from qualification.mturk_xml import export_mturk_test


class Command(BaseCommand):
    help = "Write a qualification test as MTurk QuestionForm and AnswerKey XML files."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--test", required=True, type=int, help="The test's id.")
        parser.add_argument("--out-dir", required=True, type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        test = QualificationTest.objects.filter(pk=options["test"]).first()
        if test is None:
            raise CommandError(f"There is no qualification test with id {options['test']}.", returncode=2)
        try:
            question_form, answer_key = export_mturk_test(test)
        except QualificationError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        out_dir: Path = options["out_dir"]
        stem = f"{test.slug}-v{test.version}"
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / f"{stem}_questionform.xml").write_text(question_form, encoding="utf-8")
            (out_dir / f"{stem}_answer_key.xml").write_text(answer_key, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot write to {out_dir}: {exc.strerror}.", returncode=2) from exc
        self.stdout.write(f"Wrote {stem}_questionform.xml and {stem}_answer_key.xml to {out_dir}.")
