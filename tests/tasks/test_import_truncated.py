"""An items file cut off inside its last field (an interrupted upload) is refused whole, on every path."""

from __future__ import annotations

import io
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from tasks.models import Item, Job, TaskKind
from tasks.services.errors import ImportValidationError
from tasks.services.imports import import_items
from tests.conftest import SYSTEM
from tests.factories import JobFactory
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db

CUT_CSV = b'external_id,text\n"item-1","whole text"\n"item-2","more, text"\n"item-9","some text that never clo'
CUT_MULTILINE_CSV = b'external_id,text\nitem-1,fine\nitem-2,"a first line\nand a second that never'


@pytest.fixture
def text_job(db: Any) -> Job:
    return JobFactory(task_kind=TaskKind.TEXT_CLASSIFICATION)


def _refused(job: Job, data: bytes, filename: str = "items.csv") -> ImportValidationError:
    with pytest.raises(ImportValidationError) as caught:
        import_items(job=job, stream=io.BytesIO(data), filename=filename, actor=SYSTEM)
    return caught.value


def _nothing_written(job: Job) -> None:
    assert not Item.objects.filter(job=job).exists()
    assert not AuditEvent.objects.filter(action="items.imported").exists()


def test_a_csv_cut_inside_its_last_quoted_field_is_refused_naming_the_line(text_job: Job) -> None:
    error = _refused(text_job, CUT_CSV)
    assert [e.line for e in error.errors] == [4]
    assert "ends inside a quoted field" in error.errors[0].message
    assert "cut off" in error.errors[0].message
    _nothing_written(text_job)


def test_a_cut_quoted_field_spanning_lines_names_the_line_its_row_starts_on(text_job: Job) -> None:
    error = _refused(text_job, CUT_MULTILINE_CSV)
    assert [e.line for e in error.errors] == [3]
    _nothing_written(text_job)


def test_a_text_stream_cut_inside_a_quoted_field_is_refused_too(text_job: Job) -> None:
    with pytest.raises(ImportValidationError) as caught:
        import_items(job=text_job, stream=StringIO(CUT_CSV.decode()), filename="items.csv", actor=SYSTEM)
    assert [e.line for e in caught.value.errors] == [4]
    _nothing_written(text_job)


def test_a_quote_left_open_mid_file_is_refused_at_the_row_it_opens(text_job: Job) -> None:
    data = b'external_id,text\na,"never closed\nb,two\nc,three\n'
    error = _refused(text_job, data)
    assert [e.line for e in error.errors] == [2]
    _nothing_written(text_job)


def test_a_file_cut_inside_a_multibyte_character_is_refused(text_job: Job) -> None:
    data = "external_id,text\na,fine\nb,café".encode()[:-1]
    error = _refused(text_job, data)
    assert [e.line for e in error.errors] == [3]
    assert "UTF-8 character" in error.errors[0].message
    _nothing_written(text_job)


def test_a_json_lines_file_cut_in_its_last_line_is_refused(text_job: Job) -> None:
    data = b'{"id": "a", "text": "fine"}\n{"id": "b", "text": "cut sho'
    error = _refused(text_job, data, "items.jsonl")
    assert [e.line for e in error.errors] == [2]
    assert "not valid JSON" in error.errors[0].message
    _nothing_written(text_job)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b'external_id,text\na,"two\nlines"\nb,"quoted, comma"\n', id="embedded-newline"),
        pytest.param(b'external_id,text\na,one\nb,"last, quoted"', id="no-final-newline-quoted"),
        pytest.param(b"external_id,text\na,one\nb,two", id="no-final-newline"),
        pytest.param(b'\xef\xbb\xbfexternal_id,text\r\na,one\r\nb,"say ""hi"""\r\n', id="bom-crlf"),
        pytest.param('external_id,text\na,one\nb,"naïve\ncafé"'.encode(), id="multibyte-in-last-field"),
    ],
)
def test_whole_files_still_import(text_job: Job, data: bytes) -> None:
    result = import_items(job=text_job, stream=io.BytesIO(data), filename="items.csv", actor=SYSTEM)
    assert result.created == 2
    texts = dict(Item.objects.filter(job=text_job).values_list("external_id", "payload__text"))
    assert set(texts) == {"a", "b"}
    assert all(text and not text.endswith("\r") for text in texts.values())


def test_the_command_exits_2_naming_the_line(text_job: Job, tmp_path: Path) -> None:
    path = tmp_path / "cut.csv"
    path.write_bytes(CUT_CSV)
    err = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("import_items", "--job", str(text_job.pk), str(path), stdout=StringIO(), stderr=err)
    assert caught.value.returncode == 2
    assert "nothing was imported" in str(caught.value)
    assert f"{path}: line 4: the file ends inside a quoted field" in err.getvalue()
    _nothing_written(text_job)


def test_the_api_answers_400_naming_the_line(text_job: Job, api: APIClient) -> None:
    upload = SimpleUploadedFile("items.csv", CUT_CSV, content_type="text/csv")
    response = api.post(reverse("api-item-import", args=[text_job.pk]), {"file": upload}, format="multipart")
    assert response.status_code == 400, response.content
    assert [e["line"] for e in response.json()["errors"]] == [4]
    _nothing_written(text_job)


def test_the_admin_import_page_shows_the_line(
    text_job: Job, ops_manager: Any, login_client: Callable[[Any], Client]
) -> None:
    response = login_client(ops_manager).post(
        reverse("admin:tasks_job_import", args=[text_job.pk]), {"file": SimpleUploadedFile("items.csv", CUT_CSV)}
    )
    assert response.status_code == 200
    assert [e.line for e in response.context["row_errors"]] == [4]
    assert "nothing was imported" in response.content.decode()
    _nothing_written(text_job)
