"""Admin: flagged assignments are listed and filterable."""

from __future__ import annotations

import io
import random
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tasks.models import AssignmentFlag, HitItem
from tasks.services.collection import submit_assignment
from tasks.services.imports import import_items
from tasks.services.pool import assign_next_hit
from tasks.services.publishing import publish_job
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


def test_flagged_assignments_are_listed_and_the_assignment_list_filters_on_them(
    actor: Any, make_worker: Any, superuser: Any
) -> None:
    job = JobFactory(labels=["a", "b"], gold_rate=0.5, gold_boost_rate=1.0, gold_boost_until=5, gold_miss_action="flag")
    csv = "external_id,text,gold\nn0,normal,\nn1,normal,\ng0,gold,a\n"
    import_items(job=job, stream=io.StringIO(csv), filename="i.csv", actor=actor)
    job = publish_job(job=job, actor=actor)
    worker = make_worker()
    rng = random.Random(0)
    leases = []
    for _ in range(2):  # the gold task (answered wrongly), then an ordinary one
        lease = assign_next_hit(job=job, worker=worker, rng=rng)
        item_id = HitItem.objects.get(hit_id=lease.hit_id).item_id
        leases.append(submit_assignment(assignment=lease, worker=worker, answers={item_id: "b"}))
    flag = AssignmentFlag.objects.get()
    assert flag.assignment_id == leases[0].pk
    client = Client()
    client.force_login(superuser)
    flags_page = client.get(reverse("admin:tasks_assignmentflag_changelist")).content.decode()
    assert "all gold answers wrong" in flags_page
    url = reverse("admin:tasks_assignment_changelist")
    flagged = client.get(url, {"flagged": "yes"})
    assert flagged.status_code == 200
    assert [a.pk for a in flagged.context["cl"].result_list] == [leases[0].pk]
    unflagged = client.get(url, {"flagged": "no"})
    assert [a.pk for a in unflagged.context["cl"].result_list] == [leases[1].pk]
