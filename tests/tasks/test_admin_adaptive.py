"""The job form's adaptive redundancy settings."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tasks.models import Job
from tests.tasks.test_admin import job_form_data

pytestmark = pytest.mark.django_db


def _adaptive(lo: str, hi: str, target: str, **more: str) -> dict[str, Any]:
    return job_form_data(adaptive_min_answers=lo, adaptive_max_answers=hi, adaptive_target=target, **more)


def test_an_adaptive_job_is_added_through_the_form(ops_client: Client) -> None:
    response = ops_client.post(reverse("admin:tasks_job_add"), _adaptive("2", "5", "0.95"))
    assert response.status_code == 302
    job = Job.objects.get(name="Admin-made job")
    assert (job.adaptive_min_answers, job.adaptive_max_answers, job.adaptive_target) == (2, 5, 0.95)
    assert job.is_adaptive and job.answers_per_hit == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_adaptive("4", "3", "0.9"), "The maximum number of answers must be at least the minimum."),
        (_adaptive("2", "", "0.9"), "Adaptive redundancy needs a minimum, a maximum and a target"),
        (_adaptive("2", "12", "0.9", marketplace="mturk"), "keep the maximum below 10"),
        (_adaptive("2", "4", "0.9", marketplace="groundtruth"), "Ground Truth jobs keep a fixed number"),
        (_adaptive("2", "4", "0.9", task_kind="text_multilabel"), "single-label classification jobs only"),
    ],
)
def test_bad_adaptive_settings_are_form_errors(ops_client: Client, data: dict[str, Any], message: str) -> None:
    response = ops_client.post(reverse("admin:tasks_job_add"), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Job.objects.filter(name="Admin-made job").exists()
