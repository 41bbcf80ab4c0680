"""An MTurk HTML layout as a job's task template: filled with escaped item data, served sandboxed with a
strict CSP, and its form's fields mapped back to the job's labels on submit."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from tasks.models import Answer, Assignment, Job, RawResult, TaskKind
from tasks.services.mturk_results import export_mturk_results
from tasks.services.task_templates import render_template, template_problems, template_variables
from tests.factories import ItemFactory, JobFactory
from tests.tasks.test_views import start
from workforce.models import Worker

pytestmark = pytest.mark.django_db

# A classic requester-UI layout: placeholders in text and in an attribute, a radio group, a free-text box.
LAYOUT = """
<h3>Is this review positive or negative?</h3>
<p class="review">${text}</p>
<img src="${image}" alt="">
<label><input type="radio" name="sentiment" value="positive" required> Positive</label>
<label><input type="radio" name="sentiment" value="negative"> Negative</label>
<textarea name="comment"></textarea>
"""
XSS = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def template_job(db: object) -> Callable[..., Job]:
    def make(layout: str = LAYOUT, text: str = XSS, **fields: object) -> Job:
        from tasks.services.publishing import publish_job
        from tests.conftest import SYSTEM

        fields.setdefault("labels", ["positive", "negative"])
        fields.setdefault("answer_field", "sentiment")
        job = JobFactory(task_template=layout, items_per_hit=1, redundancy=1, **fields)
        ItemFactory(job=job, external_id="r1", payload={"text": text, "image": 'https://x/a.png" onload="alert(1)'})
        return publish_job(job=job, actor=SYSTEM)

    return make


def _submit(client: Client, assignment: Assignment, fields: list[list[str]]) -> object:
    url = reverse("submit-layout-task", args=[assignment.uuid])
    return client.post(url, {"fields": json.dumps(fields)})


def test_rendering_escapes_item_values_in_text_and_attributes() -> None:
    html = render_template('<p>${text}</p><a href="${url}">${missing}</a>', {"text": XSS, "url": '"><b>', "n": 1})
    assert html == (
        "<p>&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;</p>"
        '<a href="&quot;&gt;&lt;b&gt;"></a>'
    )
    assert render_template("${n}", {"n": 3}) == "3"
    assert template_variables(LAYOUT) == ["text", "image"]


def test_a_template_needs_its_answer_field_and_one_item_per_hit() -> None:
    problems = template_problems(task_template=LAYOUT, answer_field="", items_per_hit=3)
    assert len(problems) == 2 and "answer field" in problems[0] and "items per Hit to 1" in problems[1]
    assert template_problems(task_template="", answer_field="", items_per_hit=3) == []


def test_the_task_page_frames_the_layout_sandboxed_and_shows_no_item_data(
    template_job: Callable[..., Job], worker_client: Client
) -> None:
    assignment = start(worker_client, template_job())
    page = worker_client.get(reverse("task", args=[assignment.uuid]))
    body = page.content.decode()
    frame = re.search(r"<iframe[^>]*>", body)
    assert frame is not None
    assert 'sandbox="allow-scripts allow-forms"' in frame.group(0) and "allow-same-origin" not in body
    assert reverse("task-layout", args=[assignment.uuid]) in frame.group(0)
    assert "pwned" not in body and "label-btn" not in body
    csp = page["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp


def test_the_layout_document_has_item_scripts_escaped_and_a_sandbox_csp(
    template_job: Callable[..., Job], worker_client: Client
) -> None:
    assignment = start(worker_client, template_job())
    response = worker_client.get(reverse("task-layout", args=[assignment.uuid]))
    body = response.content.decode()
    assert response.status_code == 200
    assert "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;" in body
    assert "<script>alert" not in body and "<img src=x" not in body
    assert 'src="https://x/a.png&quot; onload=&quot;alert(1)"' in body
    assert '<input type="radio" name="sentiment" value="positive" required>' in body  # the layout itself, as is
    csp = response["Content-Security-Policy"]
    assert csp.startswith("sandbox allow-scripts allow-forms;") and "allow-same-origin" not in csp
    assert "connect-src 'none'" in csp and "form-action 'none'" in csp and "frame-ancestors 'self'" in csp
    assert response["X-Frame-Options"] == "SAMEORIGIN"


def test_another_workers_layout_is_not_served(
    template_job: Callable[..., Job], worker_client: Client, make_worker: Callable[..., Worker]
) -> None:
    assignment = start(worker_client, template_job())
    other = Client()
    other.force_login(make_worker().user)
    response = other.get(reverse("task-layout", args=[assignment.uuid]))
    assert response.status_code == 404 and "pwned" not in response.content.decode()


def test_submitting_the_form_maps_its_field_to_the_label_and_keeps_every_field(
    template_job: Callable[..., Job], worker_client: Client
) -> None:
    job = template_job()
    assignment = start(worker_client, job)
    response = _submit(worker_client, assignment, [["sentiment", "negative"], ["comment", "too long, <b>dull</b>"]])
    assert response.status_code == 302
    assert Answer.objects.get(assignment=assignment).value == "negative"
    assignment.refresh_from_db()
    assert assignment.state == "submitted"
    raw = RawResult.objects.get(assignment=assignment)
    assert raw.answers == {"sentiment": "negative", "comment": "too long, <b>dull</b>"} and raw.source == "template"
    stream = io.StringIO(newline="")
    export_mturk_results(job, stream)
    row = next(csv.DictReader(io.StringIO(stream.getvalue())))
    assert (row["Answer.sentiment"], row["Answer.comment"], row["Input.text"]) == (
        "negative",
        "too long, <b>dull</b>",
        XSS,
    )


def test_a_radio_group_in_crowd_style_maps_to_its_label(
    template_job: Callable[..., Job], worker_client: Client
) -> None:
    assignment = start(worker_client, template_job())
    _submit(worker_client, assignment, [["sentiment.positive", "on"], ["comment", ""]])
    assert Answer.objects.get(assignment=assignment).value == "positive"


def test_check_boxes_sharing_a_name_give_a_multilabel_answer(
    template_job: Callable[..., Job], worker_client: Client
) -> None:
    job = template_job(labels=["cat", "dog", "bird"], task_kind=TaskKind.TEXT_MULTILABEL, answer_field="tags")
    assignment = start(worker_client, job)
    _submit(worker_client, assignment, [["tags", "bird"], ["tags", "cat"]])
    assert Answer.objects.get(assignment=assignment).value == ["cat", "bird"]
    assert RawResult.objects.get(assignment=assignment).answers == {"tags": "bird|cat"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ("not json", "no readable answers"),
        (json.dumps([["sentiment", 3]]), "no readable answers"),
        (json.dumps([["comment", "no choice"]]), "Choose exactly one answer"),
        (json.dumps([["sentiment", "meh"]]), "Choose one of the job"),
        (json.dumps([["sentiment", "positive"], ["sentiment", "negative"]]), "2 answers where one is wanted"),
    ],
)
def test_bad_submissions_are_refused_with_a_message_and_nothing_is_saved(
    template_job: Callable[..., Job], worker_client: Client, fields: str, message: str
) -> None:
    assignment = start(worker_client, template_job())
    url = reverse("submit-layout-task", args=[assignment.uuid])
    response = worker_client.post(url, {"fields": fields}, follow=True)
    assert any(message in str(m) for m in response.context["messages"])
    assert not Answer.objects.exists() and not RawResult.objects.exists()
    assignment.refresh_from_db()
    assert assignment.state == "accepted"


def test_jobs_without_a_template_keep_the_label_buttons(
    make_published_job: Callable[..., Job], worker_client: Client
) -> None:
    assignment = start(worker_client, make_published_job(items=1))
    body = worker_client.get(reverse("task", args=[assignment.uuid])).content.decode()
    assert "label-btn" in body and "<iframe" not in body
    assert worker_client.get(reverse("task-layout", args=[assignment.uuid])).status_code == 404


def test_the_admin_form_takes_a_layout_only_with_its_answer_field_and_one_item_per_hit(
    ops_manager: object, login_client: Callable[[object], Client]
) -> None:
    from tests.tasks.test_admin import job_form_data

    client = login_client(ops_manager)
    url = reverse("admin:tasks_job_add")
    refused = client.post(url, job_form_data(task_template=LAYOUT, answer_field="", items_per_hit="2"))
    errors = str(refused.context["adminform"].form.errors["task_template"])
    assert "answer field" in errors and "items per Hit to 1" in errors and not Job.objects.exists()
    taken = client.post(url, job_form_data(task_template=LAYOUT, answer_field="sentiment"))
    assert taken.status_code == 302
    assert Job.objects.get().answer_field == "sentiment"


def test_a_form_sent_after_the_lease_ran_out_is_refused_and_its_slot_goes_back_to_the_pool(
    template_job: Callable[..., Job], worker_client: Client
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from tasks.models import Hit

    assignment = start(worker_client, template_job())
    Assignment.objects.filter(pk=assignment.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    response = _submit(worker_client, assignment, [["sentiment", "negative"]])
    assert response.status_code in (200, 302)
    assignment.refresh_from_db()
    assert assignment.state == "expired"
    assert Hit.objects.get(pk=assignment.hit_id).slots_taken == 0
    assert not Answer.objects.exists() and not RawResult.objects.exists()
