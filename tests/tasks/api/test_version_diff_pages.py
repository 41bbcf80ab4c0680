"""The dataset version diff API pages its entries (added, removed and changed labels, in item order) like the other
lists: ``page_size`` (100 by default, at most 500) and a ``next`` link with an opaque cursor; ``summary`` keeps the
whole diff's counts on every page. A page's memory and queries do not grow with the job, and a later page reads
its own rows, not the versions again."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tasks.label_selectors import LabelRow
from tasks.models import DatasetVersion, Job
from tasks.services.errors import ServiceError
from tasks.services.exports import diff_dataset_versions
from tasks.services.exports import versions as versions_module
from tasks.services.exports.versions import canonical_line, get_version_diff_page
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db
AT = datetime(2025, 1, 1, tzinfo=UTC)


def _store(job: Job, number: int, rows: Iterable[tuple[int, str]]) -> DatasetVersion:
    """A dataset version whose file holds ``(item id, label)`` rows, written as a snapshot writes them."""
    lines = [
        canonical_line(
            LabelRow(
                item_id=item,
                external_id=f"item-{item:06d}",
                payload={"text": f"text {item}"},
                value=value,
                confidence=1.0,
                probabilities={value: 1.0},
                answers_count=3,
                method="mv",
                created_at=AT,
            )
        )
        for item, value in rows
    ]
    body = b"".join(lines)
    version = DatasetVersion(
        job=job,
        number=number,
        method="mv",
        consensus_version=number,
        row_count=len(lines),
        sha256=hashlib.sha256(body).hexdigest(),
        size_bytes=len(body),
        created_at=AT,
    )
    version.content.save(f"v{number}.jsonl", ContentFile(body), save=False)
    version.save()
    return version


def _two_versions(items: int) -> Job:
    """v1: items 1..n, all "pos". v2: items 3..n+2, every third "neg": 2 removed, 2 added, n/3 changed."""
    job = JobFactory()
    _store(job, 1, ((i, "pos") for i in range(1, items + 1)))
    _store(job, 2, ((i, "neg" if i % 3 == 0 else "pos") for i in range(3, items + 3)))
    return job


def _url(job: Job) -> str:
    return f"/api/jobs/{job.pk}/versions/2/diff/"


def _walk(api: APIClient, job: Job, **params: Any) -> list[dict[str, Any]]:
    pages = [api.get(_url(job), {"against": 1, **params}).json()]
    while pages[-1]["next"]:
        pages.append(api.get(pages[-1]["next"]).json())
    return pages


def _entries(page: dict[str, Any]) -> list[str]:
    return sorted(
        [f"-{e}" for e in page["removed"]]
        + [f"+{e}" for e in page["added"]]
        + [f"~{c['external_id']}" for c in page["changed"]],
        key=lambda e: e[1:],
    )


def test_pages_hold_page_size_entries_in_item_order_and_the_last_page_has_no_next(api: APIClient) -> None:
    job = _two_versions(10)  # removed 1, 2; changed 3, 6, 9; added 11, 12

    pages = _walk(api, job, page_size=3)

    assert [_entries(p) for p in pages] == [
        ["-item-000001", "-item-000002", "~item-000003"],
        ["~item-000006", "~item-000009", "+item-000011"],
        ["+item-000012"],
    ]
    assert pages[1]["changed"] == [
        {"external_id": "item-000006", "old": "pos", "new": "neg"},
        {"external_id": "item-000009", "old": "pos", "new": "neg"},
    ]
    assert pages[-1]["next"] is None and all(p["next"] for p in pages[:-1])
    summary = {"added": 2, "removed": 2, "changed": 3, "unchanged": 5}
    assert all(p["summary"] == summary for p in pages)  # the whole diff's counts on every page
    assert all((p["old"], p["new"]) == (1, 2) for p in pages)
    assert [len(_walk(api, job, page_size=n)) for n in (1, 6, 7, 500)] == [7, 2, 1, 1]
    exact = _walk(api, job, page_size=7)[0]
    assert exact["next"] is None and len(_entries(exact)) == 7


def test_the_default_page_is_100_entries_and_the_pages_add_up_to_the_whole_diff(api: APIClient) -> None:
    job = _two_versions(600)  # 2 removed, 200 changed, 2 added

    pages = _walk(api, job)

    assert [len(_entries(p)) for p in pages] == [100, 100, 4]
    whole = diff_dataset_versions(old=job.dataset_versions.get(number=1), new=job.dataset_versions.get(number=2))
    assert [e for p in pages for e in p["added"]] == whole.added
    assert [e for p in pages for e in p["removed"]] == whole.removed
    assert [c for p in pages for c in p["changed"]] == whole.changed


def test_a_version_against_itself_is_one_page_of_nothing(api: APIClient) -> None:
    job = _two_versions(5)
    body = api.get(_url(job), {"against": 2}).json()
    assert body == {
        "old": 2,
        "new": 2,
        "summary": {"added": 0, "removed": 0, "changed": 0, "unchanged": 5},
        "added": [],
        "removed": [],
        "changed": [],
        "next": None,
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page_size": 0}, "page_size"),
        ({"page_size": -1}, "page_size"),
        ({"page_size": 501}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_a_bad_paging_parameter_is_400_naming_it(api: APIClient, params: dict[str, Any], field: str) -> None:
    job = _two_versions(10)
    response = api.get(_url(job), {"against": 1, **params})
    assert response.status_code == 400
    assert list(response.json()) == [field] and response.json()[field][0]


def test_a_cursor_of_another_diff_or_an_edited_one_is_400(api: APIClient) -> None:
    job = _two_versions(10)
    _store(job, 3, ((i, "neutral") for i in range(1, 11)))
    cursor = api.get(_url(job), {"against": 1, "page_size": 2}).json()["next"].split("cursor=")[1]

    other = api.get(_url(job), {"against": 3, "cursor": cursor})
    edited = api.get(_url(job), {"against": 1, "cursor": cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")})

    assert other.status_code == edited.status_code == 400
    assert "Invalid cursor" in other.json()["cursor"][0]


def _first_and_second_page(api: APIClient, job: Job) -> tuple[int, int, int]:
    """Queries of a first page, of a later page, and the peak bytes Python allocated for the first page."""
    api.get(_url(job), {"against": 1, "page_size": 50})  # warm up (imports, caches of Django's own)
    from django.core.cache import cache

    cache.clear()  # the diff's counts are not cached yet: the first page counts the whole diff
    tracemalloc.start()
    with CaptureQueriesContext(connection) as first:
        body = api.get(_url(job), {"against": 1, "page_size": 50}).json()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    with CaptureQueriesContext(connection) as later:
        api.get(body.get("next") or _url(job), {} if body.get("next") else {"against": 1})
    return len(first), len(later), peak


def test_a_pages_queries_and_memory_do_not_grow_with_the_job(api: APIClient) -> None:
    small_first, small_later, small_peak = _first_and_second_page(api, _two_versions(300))
    large_first, large_later, large_peak = _first_and_second_page(api, _two_versions(30_000))

    # 100x the rows (10,000 changed labels): the page's memory stays that of a page (the whole diff was ~10 MB).
    assert large_peak < 2 * small_peak + 256 * 1024, (small_peak, large_peak)
    assert (large_first, large_later) == (small_first, small_later)


def test_later_pages_and_repeated_first_pages_read_their_own_rows_only(
    api: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = _two_versions(3000)
    parsed: list[int] = []  # one per line read from either file
    advance = versions_module._VersionReader.advance

    def counting(reader: Any) -> None:
        parsed.append(1)
        advance(reader)

    monkeypatch.setattr(versions_module._VersionReader, "advance", counting)

    first = api.get(_url(job), {"against": 1, "page_size": 5}).json()
    counted = len(parsed)  # both files, once: the counts
    parsed.clear()
    second = api.get(first["next"]).json()
    later = len(parsed)
    parsed.clear()
    again = api.get(_url(job), {"against": 1, "page_size": 5}).json()  # the counts come from the cache

    assert counted == 2 * 3000 + 2  # every line, and the end of each file
    assert later <= 2 * 20 and len(parsed) <= 2 * 20
    assert second["summary"] == again["summary"] == first["summary"]
    assert _entries(second) == ["~item-000012", "~item-000015", "~item-000018", "~item-000021", "~item-000024"]


def test_a_file_out_of_item_order_cannot_be_compared(api: APIClient) -> None:
    job = JobFactory()
    old = _store(job, 1, [(1, "pos"), (2, "pos")])
    new = _store(job, 2, [(2, "pos"), (1, "neg")])
    with pytest.raises(ServiceError, match="not in item order"):
        get_version_diff_page(old=old, new=new, size=10)
    response = api.get(_url(job), {"against": 1})
    assert response.status_code == 400 and "not in item order" in response.json()["detail"]
