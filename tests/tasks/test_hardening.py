"""Input hardening: script payloads stay inert everywhere they are shown; upload limits; internal-only jobs."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from tasks.models import ConsensusLabel, Item, Job, JobState
from tasks.services.collection import submit_assignment
from tasks.services.errors import ServiceError
from tasks.services.imports import import_items_from_text
from tasks.services.jobs import configure_job
from tasks.services.pool import assign_next_hit
from tasks.services.publishing import publish_job
from tests.conftest import SYSTEM
from tests.factories import JobFactory, UserFactory
from workforce.models import Marketplace

pytestmark = pytest.mark.django_db

MARK = "pwned"
PAYLOADS = [
    f"<script>window.{MARK}=1</script>",
    f'"><img src=x onerror="window.{MARK}=2">',
    f"<svg onload=window.{MARK}=3>",
    f"</textarea></blockquote><script>{MARK}()</script>",
    f"javascript:{MARK}()",
    f"{{{{ 7*7 }}}} {{% debug %}} <iframe srcdoc='<script>{MARK}()</script>'>",
]


class ActiveContent(HTMLParser):
    """Collects what a browser would run: script bodies, on* handlers, javascript: URLs, iframes' srcdoc."""

    def __init__(self) -> None:
        super().__init__()
        self.active: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        kind = dict(attrs).get("type") or "text/javascript"
        self._in_script = tag == "script" and kind != "application/json"  # json_script data is never run
        for name, value in attrs:
            value = value or ""
            if name.startswith("on") or name == "srcdoc":
                self.active.append(f"{tag}[{name}]={value}")
            if name in ("href", "src", "action", "formaction") and value.strip().lower().startswith("javascript:"):
                self.active.append(f"{tag}[{name}]={value}")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.active.append(data)


def assert_inert(response: Any) -> None:
    assert response.status_code == 200
    html = response.content.decode()
    parser = ActiveContent()
    parser.feed(html)
    assert [code for code in parser.active if MARK in code] == []
    for raw in ("<script>window.pwned", "<img src=x onerror", "<svg onload", "<iframe srcdoc"):
        assert raw not in html


@pytest.fixture
def hostile_job() -> Job:
    job = JobFactory(
        name=f"<script>{MARK}()</script> job",
        description=PAYLOADS[1],
        instructions="\n".join(PAYLOADS),
        labels=["pos", f"<b onmouseover={MARK}()>neg</b>"],
        items_per_hit=len(PAYLOADS),
        redundancy=1,
    )
    rows = [json.dumps({"external_id": f"x{i} {p}", "text": p, "note": p}) for i, p in enumerate(PAYLOADS)]
    import_items_from_text(job=job, text="\n".join(rows), filename="items.jsonl", actor=SYSTEM)
    return publish_job(job=job, actor=SYSTEM)


def test_script_payloads_in_items_and_instructions_never_run_in_the_worker_pages(hostile_job: Job, make_worker: Any):
    worker = make_worker()
    client = Client()
    client.force_login(worker.user)
    assert_inert(client.get(reverse("work-list")))
    lease = assign_next_hit(job=hostile_job, worker=worker)
    page = client.get(reverse("task", args=[lease.uuid]))
    assert_inert(page)
    assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in page.content.decode()
    # The labeling page's script receives the next task as JSON and renders it with textContent only.
    script = (Path(__file__).resolve().parents[2] / "tasks" / "static" / "tasks" / "worker.js").read_text()
    assert not any(sink in script for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write"))


def test_script_payloads_never_run_in_the_admin_pages(hostile_job: Job, make_worker: Any):
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin)
    worker = make_worker(display_name=f"<script>{MARK}()</script>")
    lease = assign_next_hit(job=hostile_job, worker=worker)
    items = list(lease.hit.items.order_by("hit_items__position"))
    submit_assignment(assignment=lease, worker=worker, answers={i.pk: hostile_job.labels[1] for i in items})
    ConsensusLabel.objects.create(
        job=hostile_job, item=items[0], value=hostile_job.labels[1], confidence=1.0, method="mv", answers_count=1
    )
    item = Item.objects.filter(job=hostile_job).first()
    assert item is not None
    for url in (
        reverse("admin:tasks_job_changelist"),
        reverse("admin:tasks_job_change", args=[hostile_job.pk]),
        reverse("admin:tasks_item_changelist"),
        reverse("admin:tasks_item_change", args=[item.pk]),
        reverse("admin:tasks_assignment_changelist"),
        reverse("admin:tasks_assignment_change", args=[lease.pk]),
        reverse("admin:tasks_consensuslabel_changelist"),
        reverse("admin:workforce_worker_changelist"),
        reverse("admin:workforce_auditevent_changelist"),
    ):
        assert_inert(client.get(url))


@override_settings(IMPORT_MAX_UPLOAD_BYTES=1000)
def test_uploads_over_the_limit_are_refused_before_parsing(ops_manager: Any) -> None:
    job = JobFactory()
    big = b"external_id,text\n" + b"".join(b"id-%d,%s\n" % (i, b"x" * 40) for i in range(50))
    api = APIClient()
    api.force_authenticate(ops_manager)
    response = api.post(
        reverse("api-item-import", args=[job.pk]), {"file": SimpleUploadedFile("a.csv", big)}, format="multipart"
    )
    assert response.status_code == 400 and "uploads are limited to" in response.json()["detail"]
    bulk = api.post(f"/api/jobs/{job.pk}/items/", {"file": SimpleUploadedFile("a.csv", big)}, format="multipart")
    assert bulk.status_code == 400 and "uploads are limited to" in bulk.json()["detail"]
    client = Client()
    client.force_login(ops_manager)
    page = client.post(reverse("admin:tasks_job_import", args=[job.pk]), {"file": SimpleUploadedFile("a.csv", big)})
    assert page.status_code == 200 and "uploads are limited to" in page.content.decode()
    assert not Item.objects.exists()


def test_an_internal_only_job_cannot_be_published_to_an_external_marketplace() -> None:
    job = JobFactory(internal_only=True, marketplace=Marketplace.MTURK)
    Item.objects.create(job=job, external_id="a", payload={"text": "a"}, payload_hash="a")
    with pytest.raises(ServiceError, match="internal-only"):
        publish_job(job=job, actor=SYSTEM)
    job.refresh_from_db()
    assert job.state == JobState.DRAFT
    with pytest.raises(ServiceError, match="internal worker pool"):
        configure_job(job=job, actor=SYSTEM)


def test_the_job_form_refuses_internal_only_with_an_external_marketplace(ops_manager: Any) -> None:
    job = JobFactory(internal_only=False)
    client = Client()
    client.force_login(ops_manager)
    url = reverse("admin:tasks_job_change", args=[job.pk])
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(labels=json.dumps(job.labels), internal_only="on", marketplace=Marketplace.MTURK)
    data["assignment_duration"] = "00:10:00"
    response = client.post(url, data)
    assert response.status_code == 200
    assert "internal worker pool" in str(response.context["adminform"].form.errors)
    job.refresh_from_db()
    assert not job.internal_only
