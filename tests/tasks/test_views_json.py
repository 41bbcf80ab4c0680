"""The labeling page's script submits with ``Accept: application/json`` and gets the next task back."""

from __future__ import annotations

from collections.abc import Callable

from django.test import Client

from tasks.models import Answer, Assignment, AssignmentState, Job, TaskKind
from tasks.services.pool import assign_next_hit
from workforce.models import Worker

JSON = {"HTTP_ACCEPT": "application/json"}


def _lease(job: Job, worker: Worker) -> Assignment:
    return assign_next_hit(job=job, worker=worker)


def test_a_json_submit_stores_the_answer_and_returns_the_next_task(
    make_published_job: Callable[..., Job], worker: Worker, worker_client: Client
) -> None:
    job = make_published_job(items=3)
    first = _lease(job, worker)
    response = worker_client.post(f"/work/tasks/{first.uuid}/submit/", {"answer-1": "neg"}, **JSON)
    assert response.status_code == 200
    nxt = response.json()["next"]
    assert Answer.objects.get(assignment=first).value == "neg"
    second = Assignment.objects.get(uuid=nxt["uuid"])
    assert second.worker == worker and second.hit_id != first.hit_id
    assert nxt["submit_url"] == f"/work/tasks/{second.uuid}/submit/"
    assert [i["id"] for i in nxt["items"]] == [1]  # items are named by their place on the page
    assert set(nxt["items"][0]) == {"id", "text"}  # nothing beyond what the page shows
    assert 0 < nxt["seconds_left"] <= 600


def test_a_json_submit_shows_only_the_image_of_an_image_item(
    make_published_job: Callable[..., Job], worker: Worker, worker_client: Client
) -> None:
    job = make_published_job(items=2, task_kind=TaskKind.IMAGE_CLASSIFICATION)
    job.items.update(payload={"image_url": "https://example.org/a.png", "secret_column": "do not show"})
    first = _lease(job, worker)
    nxt = worker_client.post(f"/work/tasks/{first.uuid}/submit/", {"answer-1": "pos"}, **JSON).json()["next"]
    assert nxt["items"][0] == {"id": nxt["items"][0]["id"], "image_url": "https://example.org/a.png"}


def test_a_refused_json_submit_is_a_400_with_the_reason_and_stores_nothing(
    make_published_job: Callable[..., Job], worker: Worker, worker_client: Client
) -> None:
    job = make_published_job(items=2)
    lease = _lease(job, worker)
    response = worker_client.post(f"/work/tasks/{lease.uuid}/submit/", {"answer-1": "maybe"}, **JSON)
    assert response.status_code == 400
    body = response.json()
    assert "Choose one of" in body["error"] and body["redirect"] is None
    assert not Answer.objects.exists()


def test_the_last_json_submit_sends_the_worker_to_the_work_list(
    make_published_job: Callable[..., Job], worker: Worker, worker_client: Client
) -> None:
    job = make_published_job(items=1)
    lease = _lease(job, worker)
    body = worker_client.post(f"/work/tasks/{lease.uuid}/submit/", {"answer-1": "pos"}, **JSON).json()
    assert body["next"] is None and body["redirect"] == "/work/"
    assert "no more work" in body["message"]


def test_a_json_skip_returns_the_task_and_hands_out_another(
    make_published_job: Callable[..., Job], worker: Worker, worker_client: Client
) -> None:
    job = make_published_job(items=2)
    lease = _lease(job, worker)
    body = worker_client.post(f"/work/tasks/{lease.uuid}/return/", **JSON).json()
    lease.refresh_from_db()
    assert lease.state == AssignmentState.RETURNED
    assert Assignment.objects.get(uuid=body["next"]["uuid"]).hit_id != lease.hit_id


def test_a_submit_page_round_trip_costs_a_bounded_number_of_queries(
    make_published_job: Callable[..., Job], worker: Worker, worker_client: Client, django_assert_max_num_queries
) -> None:
    job = make_published_job(items=20)
    lease = _lease(job, worker)
    with django_assert_max_num_queries(24):
        response = worker_client.post(f"/work/tasks/{lease.uuid}/submit/", {"answer-1": "pos"}, **JSON)
    assert response.status_code == 200 and response.json()["next"]
