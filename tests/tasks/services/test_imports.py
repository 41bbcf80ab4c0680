from __future__ import annotations

import io
import json

import pytest

from tasks.models import Hit, HitItem, Item, JobState, TaskKind
from tasks.services.errors import ImportValidationError, ServiceError
from tasks.services.imports import import_items
from tests.factories import JobFactory
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db


def _csv(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode())


def test_it_imports_a_csv_and_keeps_extra_columns_in_the_payload(actor):
    job = JobFactory()
    result = import_items(
        job=job, stream=_csv("external_id,text,source\na,hello,web\nb,bye,app\n"), filename="x.csv", actor=actor
    )
    assert (result.created, result.unchanged, result.rows) == (2, 0, 2)
    item = Item.objects.get(job=job, external_id="a")
    assert item.payload == {"text": "hello", "source": "web"}
    assert AuditEvent.objects.filter(action="items.imported", object_id=str(job.pk)).count() == 1


def test_it_imports_json_lines_with_integer_ids_and_nested_payloads(actor):
    job = JobFactory()
    lines = [
        json.dumps({"id": 7, "text": "seven"}),
        "",
        json.dumps({"external_id": "x", "payload": {"text": "nested"}}),
    ]
    result = import_items(job=job, stream=io.StringIO("\n".join(lines)), filename="items.jsonl", actor=actor)
    assert result.created == 2
    assert Item.objects.get(job=job, external_id="7").payload == {"text": "seven"}
    assert Item.objects.get(job=job, external_id="x").payload == {"text": "nested"}


def test_reimporting_the_same_file_is_a_no_op(actor):
    job = JobFactory()
    data = "external_id,text\na,one\nb,two\n"
    import_items(job=job, stream=_csv(data), filename="x.csv", actor=actor)
    again = import_items(job=job, stream=_csv(data), filename="x.csv", actor=actor)
    assert (again.created, again.unchanged) == (0, 2)
    assert Item.objects.filter(job=job).count() == 2
    assert AuditEvent.objects.filter(action="items.imported").count() == 1


def test_bad_rows_are_reported_with_line_numbers_and_nothing_is_written(actor):
    job = JobFactory()
    data = "external_id,text\na,fine\n,no id\nc,\na,duplicate\nd,also fine\n"
    with pytest.raises(ImportValidationError) as info:
        import_items(job=job, stream=_csv(data), filename="x.csv", actor=actor)
    lines = {e.line: e.message for e in info.value.errors}
    assert set(lines) == {3, 4, 5}
    assert "empty" in lines[3]
    assert "text" in lines[4]
    assert "line 2" in lines[5]
    assert not Item.objects.exists()


def test_a_changed_payload_for_an_existing_id_is_an_error(actor):
    job = JobFactory()
    import_items(job=job, stream=_csv("external_id,text\na,one\n"), filename="x.csv", actor=actor)
    with pytest.raises(ImportValidationError) as info:
        import_items(job=job, stream=_csv("external_id,text\nb,new\na,changed\n"), filename="x.csv", actor=actor)
    assert info.value.errors[0].line == 3
    assert Item.objects.filter(job=job).count() == 1


def test_image_jobs_need_a_safe_image_url(actor):
    job = JobFactory(task_kind=TaskKind.IMAGE_CLASSIFICATION)
    data = "external_id,image_url\na,https://example.org/a.png\nb,javascript:alert(1)\n"
    with pytest.raises(ImportValidationError) as info:
        import_items(job=job, stream=_csv(data), filename="x.csv", actor=actor)
    assert [e.line for e in info.value.errors] == [3]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ("", "empty"),
        ("text\nhello\n", "external_id"),
        ("external_id,text\n", "no rows"),
        ("external_id,text,text\na,b,c\n", "duplicate column"),
    ],
)
def test_unusable_files_get_one_clear_error(actor, data, fragment):
    job = JobFactory()
    with pytest.raises(ImportValidationError) as info:
        import_items(job=job, stream=_csv(data), filename="x.csv", actor=actor)
    assert fragment in str(info.value)


def test_invalid_utf8_and_bad_json_are_reported(actor):
    job = JobFactory()
    with pytest.raises(ImportValidationError, match="UTF-8"):
        import_items(job=job, stream=io.BytesIO(b"external_id,text\na,\xff\xfe\n"), filename="x.csv", actor=actor)
    with pytest.raises(ImportValidationError) as info:
        import_items(
            job=job, stream=io.StringIO('{"id": 1, "text": "a"}\n{oops\n[1]\n'), filename="x.jsonl", actor=actor
        )
    assert [e.line for e in info.value.errors] == [2, 3]


def test_the_format_must_be_known(actor):
    with pytest.raises(ServiceError, match="format"):
        import_items(job=JobFactory(), stream=_csv("x"), filename="items.xlsx", actor=actor)


def test_items_added_to_a_published_job_get_open_hits(actor, make_published_job):
    job = make_published_job(items=2)
    result = import_items(job=job, stream=_csv("external_id,text\nnew-1,a\nnew-2,b\n"), filename="x.csv", actor=actor)
    assert result.hits_created == 2
    assert Hit.objects.filter(job=job, state="open").count() == 4
    assert HitItem.objects.filter(hit__job=job).count() == 4


def test_cancelled_jobs_take_no_items(actor):
    job = JobFactory(state=JobState.CANCELLED)
    with pytest.raises(ServiceError, match="cancelled"):
        import_items(job=job, stream=_csv("external_id,text\na,b\n"), filename="x.csv", actor=actor)


def test_a_large_import_uses_a_bounded_number_of_queries(actor, django_assert_max_num_queries):
    job = JobFactory()
    rows = "".join(f"i{n},text {n}\n" for n in range(12000))
    # COPY on PostgreSQL; on SQLite bulk_create batches are capped by its bound-parameter limit.
    # Either way far below one query per row.
    with django_assert_max_num_queries(120):
        result = import_items(job=job, stream=_csv("external_id,text\n" + rows), filename="x.csv", actor=actor)
    assert result.created == 12000
    assert Item.objects.filter(job=job).count() == 12000
