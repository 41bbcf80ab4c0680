"""The job page's forecast and the finance job report's are one figure, from one rule
(``tasks.reports.selectors.project_total``): remaining answers at the observed cost of a paid assignment,
bonuses and escrow left out, slots MTurk holds in escrow not added twice.
"""

from __future__ import annotations

import io
import random
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tasks.dashboard import compute_job_dashboard, get_job_glance
from tasks.models import Assignment, CostEntry, CostKind, Hit, HitItem, Job
from tasks.reports.selectors import get_cost_report
from tasks.services.collection import submit_assignment
from tasks.services.imports import import_items
from tasks.services.ledger import reverse_cost
from tasks.services.pool import assign_next_hit
from tasks.services.publishing import publish_job
from tasks.services.review import approve_assignment, pay_bonus, reject_assignment
from tasks.services.review_batch import approve_assignments
from tests.conftest import SYSTEM
from tests.factories import JobFactory
from tests.mturk_fixtures import aws_env, mturk, standin, stubbed  # noqa: F401

pytestmark = pytest.mark.django_db
D = Decimal


def internal_job_with_gold() -> Job:
    """Six plain items and four gold ones, one answer each, half the pages gold."""
    job = JobFactory(labels=["yak", "zebra"], redundancy=1, gold_rate=0.5, reward=D("0.05"))
    rows = "".join(f"plain-{i},plain text {i},\n" for i in range(6))
    rows += "".join(f"gold-{i},gold text {i},zebra\n" for i in range(4))
    import_items(job=job, stream=io.StringIO("external_id,text,gold\n" + rows), filename="i.csv", actor=SYSTEM)
    return publish_job(job=job, actor=SYSTEM)


def submit(job: Job, worker: Any, count: int) -> None:
    rng = random.Random(3)
    for _ in range(count):
        lease = assign_next_hit(job=job, worker=worker, rng=rng)
        items = HitItem.objects.filter(hit_id=lease.hit_id).values_list("item_id", flat=True)
        submit_assignment(assignment=lease, worker=worker, answers=dict.fromkeys(items, "zebra"))


def test_an_internal_job_page_forecasts_what_its_cost_report_does(make_worker: Any) -> None:
    job = internal_job_with_gold()
    worker = make_worker()
    submit(job, worker, 6)
    approve_assignments(job=job, actor=SYSTEM)
    gold_work = Hit.objects.filter(job=job, is_gold=True, assignments_submitted__gt=0).count()
    assert gold_work > 0  # some of the paid work was gold, which the job's answer tally does not count
    pay_bonus(job=job, worker=worker, amount=D("0.25"), reason="Careful work", key="b1", actor=SYSTEM)
    pay = CostEntry.objects.filter(job=job, kind=CostKind.INTERNAL_PAY).order_by("id").first()
    assert pay is not None
    reverse_cost(entry=pay, idempotency_key="pay:reversed")

    report = get_cost_report(job)
    glance = get_job_glance(job)
    remaining = glance.progress.answers_wanted - glance.progress.answers_submitted
    assert remaining > 0 and report.forecast.remaining_assignments == remaining
    # Six assignments paid 0.05 each, one of them reversed: 0.25 over the six paid is 0.0417 an assignment.
    assert report.forecast.cost_per_assignment == D("0.0417")
    expected = report.total + D("0.0417") * remaining
    # The old page divided everything (the bonus, the gold work, the reversal) by the answers submitted.
    assert compute_job_dashboard(job).forecast == expected == report.forecast.projected_total


def test_before_any_paid_work_the_page_forecasts_the_worst_case_like_the_report(make_worker: Any) -> None:
    job = internal_job_with_gold()
    submit(job, make_worker(), 2)  # submitted, not yet approved: nothing paid
    report = get_cost_report(job)
    assert report.forecast.cost_per_assignment is None
    # Nothing booked yet: the remaining answers at the job's worst case, the reward.
    assert report.total == 0 and report.forecast.remaining_assignments > 0
    expected = D("0.05") * report.forecast.remaining_assignments
    assert compute_job_dashboard(job).forecast == report.forecast.projected_total == expected


def test_a_job_without_work_wanted_has_no_page_forecast() -> None:
    job = JobFactory()
    assert compute_job_dashboard(job).forecast is None


def test_an_mturk_job_page_forecasts_what_its_cost_report_does(mturk, standin) -> None:  # noqa: F811
    from tasks.services.mturk_collect import collect_mturk_work
    from tests.tasks.services.mturk_helpers import ACTOR, published_mturk_job

    job = published_mturk_job(mturk, 3, redundancy=2)  # 3 HITs x 2 slots, each slot's reward and fee in escrow
    page, report = compute_job_dashboard(job), get_cost_report(job)
    assert report.forecast.committed_escrow > 0
    assert page.forecast == report.forecast.projected_total == report.total  # every slot is escrowed already

    hits = list(Hit.objects.filter(job=job).order_by("id"))
    ids = []
    for hit, worker in ((hits[0], "AW1"), (hits[1], "AW2"), (hits[2], "AW1")):
        external = standin.state.accept(str(hit.external_id), worker)
        standin.state.external_submit([("assignmentId", external), (f"item:{hit.items.get().external_id}", "pos")])
        ids.append(external)
    collect_mturk_work(actor=ACTOR, connector=mturk)
    first, second, third = (Assignment.objects.get(external_id=x) for x in ids)
    approve_assignment(assignment=first, actor=ACTOR)
    approve_assignment(assignment=third, actor=ACTOR)
    reject_assignment(assignment=second, actor=ACTOR, feedback="no")
    pay_bonus(job=job, worker=first.worker, amount=D("0.50"), reason="thanks", key="k1", actor=ACTOR, assignment=first)

    page, report = compute_job_dashboard(job), get_cost_report(job)
    assert report.forecast.remaining_assignments == 3
    assert report.forecast.cost_per_assignment == D("0.06")  # reward and fee, not the bonus or the escrow
    assert page.forecast == report.forecast.projected_total == report.total  # the open slots are in escrow
    assert compute_job_dashboard(job).forecast == report.forecast.projected_total


def test_the_always_current_glance_reads_no_ledger_rows(make_worker: Any) -> None:
    """The forecast reads the ledger, so it is a cached figure; the glance stays a few tally reads."""
    job = internal_job_with_gold()
    submit(job, make_worker(), 3)
    approve_assignments(job=job, actor=SYSTEM)
    with CaptureQueriesContext(connection) as queries:
        get_job_glance(job)
    assert len(queries.captured_queries) <= 3
    assert not any("costentry" in q["sql"].lower() for q in queries.captured_queries)


def test_the_job_page_shows_the_reports_projected_total(make_worker: Any, ops_manager: Any, login_client: Any) -> None:
    from django.urls import reverse

    from tasks.templatetags.money import money

    job = internal_job_with_gold()
    submit(job, make_worker(), 3)
    approve_assignments(job=job, actor=SYSTEM)
    page = login_client(ops_manager).get(reverse("admin:tasks_job_change", args=[job.pk])).content.decode()
    projected = get_cost_report(job).forecast.projected_total
    assert f"Forecast at completion: {money(projected)} USD" in page
