"""Items from a CSV without an id column (an MTurk "Publish Batch" input file): ids from a named column or
from each row's cells, so the file imports as it is and importing it again adds nothing."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tasks.models import Item
from tasks.services.errors import ServiceError
from tasks.services.imports import CONTENT_IDS, ImportValidationError, import_items_from_text
from tests.conftest import SYSTEM
from tests.factories import JobFactory
from tests.tasks.services.mturk_fixtures import DATA_DIR, real_file

pytestmark = pytest.mark.django_db
INPUT = "p808_row_input_librivox_publish_batch.csv"


def test_a_real_mturk_batch_input_imports_with_ids_from_its_rows_and_once() -> None:
    real_file(INPUT)  # skips where the real files are not
    rows = list(csv.DictReader(io.StringIO((DATA_DIR / INPUT).read_text())))
    layout = '<audio src="${gold_clips}"></audio><audio src="${Q0}"></audio><crowd-radio-group name="quality">'
    job = JobFactory(state="draft", task_template=layout, answer_field="quality")
    out = io.StringIO()
    call_command("import_items", "--job", str(job.pk), "--ids-from-content", str(DATA_DIR / INPUT), stdout=out)
    assert f"Imported {len(rows)} new item(s)" in out.getvalue()
    items = list(Item.objects.filter(job=job))
    distinct_rows = {tuple(row.values()) for row in rows}
    assert len(items) == len(distinct_rows) == len(rows)  # every row differs somewhere, so every id does
    assert {tuple(item.payload[k] for k in rows[0]) for item in items} == distinct_rows
    assert all(item.external_id.startswith("row-") for item in items)
    again = io.StringIO()
    call_command("import_items", "--job", str(job.pk), "--ids-from-content", str(DATA_DIR / INPUT), stdout=again)
    assert "Imported 0 new item(s)" in again.getvalue() and f"({len(rows)} unchanged" in again.getvalue()


def test_without_an_id_column_the_refusal_says_how_to_import_it(tmp_path: Path) -> None:
    path = tmp_path / "batch.csv"
    path.write_text("text,url\nhello,https://example.org/a\n")
    job = JobFactory(state="draft")
    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing was imported") as refused:
        call_command("import_items", "--job", str(job.pk), str(path), stderr=err)
    assert refused.value.returncode == 2 and "derive ids from each row's content" in err.getvalue()
    with pytest.raises(CommandError):
        call_command("import_items", "--job", str(job.pk), "--id-column", "nope", str(path), stderr=err)
    assert "no column 'nope'" in err.getvalue()
    call_command("import_items", "--job", str(job.pk), "--id-column", "url", str(path), stdout=io.StringIO())
    item = Item.objects.get(job=job)
    assert item.external_id == "https://example.org/a" and item.payload == {"text": "hello"}


def test_content_ids_differ_when_any_cell_does_and_apply_to_csv_only() -> None:
    job = JobFactory(state="draft")
    text = "text,lang\nhello,en\nhello,fr\n"
    import_items_from_text(job=job, text=text, filename="f.csv", actor=SYSTEM, id_column=CONTENT_IDS)
    assert Item.objects.filter(job=job).values("external_id").distinct().count() == 2
    with pytest.raises(ServiceError, match="CSV files only"):
        import_items_from_text(job=job, text='{"text": "x"}\n', filename="f.jsonl", actor=SYSTEM, id_column="text")
    with pytest.raises(ImportValidationError):
        import_items_from_text(job=job, text="text\n", filename="f.csv", actor=SYSTEM, id_column="id")


def test_a_layout_job_takes_rows_holding_its_fields_and_names_the_one_missing() -> None:
    job = JobFactory(state="draft", task_template="<p>${sentence}</p>", answer_field="label")
    import_items_from_text(job=job, text="id,sentence\na,hi\n", filename="f.csv", actor=SYSTEM)
    with pytest.raises(ImportValidationError, match=r"uses \$\{sentence\}, which this row does not have"):
        import_items_from_text(job=job, text="id,other\nb,x\n", filename="f.csv", actor=SYSTEM)
