"""Finance in the admin: the finance role reads every report and the ledger and changes nothing;
the dashboard, job report and exports render; the job page shows the estimate and budget banner;
publishing over the cap is refused with a message; reviewers approve and reject from the list."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse

from tasks.models import Assignment, AssignmentState, CostEntry, Job, JobState, MonthlyBudget
from tasks.services.review_batch import approve_assignments
from tests.conftest import SYSTEM
from tests.factories import ItemFactory, JobFactory
from tests.tasks.finance_helpers import submit_after, submit_work
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def paid_job(make_published_job, make_worker) -> Job:
    job = make_published_job(items=2, redundancy=1, reward=D("0.05"), budget_cap=D("0.10"))
    worker = make_worker()
    submit_work(job, worker)
    submit_work(job, worker)
    approve_assignments(job=job, actor=SYSTEM)
    return job


def messages_of(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_finance_reads_every_report_and_the_ledger(finance_client: Client, paid_job: Job) -> None:
    dashboard = finance_client.get(reverse("admin:tasks_finance_dashboard"))
    assert dashboard.status_code == 200
    body = dashboard.content.decode()
    assert "<svg" in body and paid_job.name in body and "reached 100% of its budget" in body
    report = finance_client.get(reverse("admin:tasks_finance_job", args=[paid_job.pk]) + "?by=day")
    assert report.status_code == 200 and "0.10 USD (committed" in report.content.decode()
    export = finance_client.get(reverse("admin:tasks_finance_export", args=[paid_job.pk, "worker", "xlsx"]))
    assert export.status_code == 200 and export["Content-Type"].startswith("application/vnd.openxml")
    for name in ("costentry", "budgetreservation", "budgetalert", "monthlybudget", "job", "assignment"):
        assert finance_client.get(reverse(f"admin:tasks_{name}_changelist")).status_code == 200, name
    entry = CostEntry.objects.first()
    assert finance_client.get(reverse("admin:tasks_costentry_change", args=[entry.pk])).status_code == 200


def test_finance_changes_nothing(finance_client: Client, paid_job: Job) -> None:
    change = reverse("admin:tasks_job_change", args=[paid_job.pk])
    response = finance_client.post(change, {"name": "renamed", "budget_cap": "99"})
    assert response.status_code == 403
    paid_job.refresh_from_db()
    assert paid_job.name != "renamed" and paid_job.budget_cap == D("0.10")
    assert (
        finance_client.post(reverse("admin:tasks_monthlybudget_add"), {"month": "2030-01-01", "cap": "1"}).status_code
        == 403
    )
    assert not MonthlyBudget.objects.exists()
    assert finance_client.get(reverse("admin:tasks_job_add")).status_code == 403
    # Review and lifecycle actions are not offered, and posting them does nothing.
    finance_client.post(
        reverse("admin:tasks_job_changelist"), {"action": "cancel_selected", "_selected_action": [paid_job.pk]}
    )
    assert Job.objects.get(pk=paid_job.pk).state == JobState.COMPLETED
    from django.contrib.auth import get_user_model

    finance = get_user_model().objects.get(username="finance")
    assert not [p for p in finance.get_all_permissions() if not p.split(".")[1].startswith("view_")]


def test_a_user_without_finance_rights_cannot_see_the_dashboard(reviewer: Any) -> None:
    client = Client()
    client.force_login(reviewer)
    assert client.get(reverse("admin:tasks_finance_dashboard")).status_code == 403


def test_the_job_page_shows_the_preflight_estimate(superuser: Any) -> None:
    job = JobFactory(redundancy=12, reward=D("0.50"), marketplace="mturk")
    ItemFactory.create_batch(10, job=job)
    client = Client()
    client.force_login(superuser)
    body = client.get(reverse("admin:tasks_job_change", args=[job.pk])).content.decode()
    assert "Cost estimate" in body and "Total 84.00 USD" in body and "saves 12.00" in body


def test_publishing_over_the_cap_shows_the_reason(superuser: Any) -> None:
    job = JobFactory(redundancy=3, reward=D("0.05"), budget_cap=D("0.10"))
    ItemFactory.create_batch(5, job=job)
    client = Client()
    client.force_login(superuser)
    response = client.post(
        reverse("admin:tasks_job_changelist"), {"action": "publish_selected", "_selected_action": [job.pk]}, follow=True
    )
    assert any("needs 0.75 USD but only 0.10" in m for m in messages_of(response))
    assert Job.objects.get(pk=job.pk).state == JobState.DRAFT


def test_the_cap_cannot_be_set_below_what_is_reserved(superuser: Any, paid_job: Job) -> None:
    client = Client()
    client.force_login(superuser)
    page = client.get(reverse("admin:tasks_job_change", args=[paid_job.pk]))
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k in form.fields}
    data.update({"labels": '["pos", "neg", "neutral"]', "requirements": "[]", "budget_cap": "0.05",
                 "assignment_duration": "00:10:00", "consensus_method": "mv"})  # fmt: skip
    response = client.post(reverse("admin:tasks_job_change", args=[paid_job.pk]), data)
    assert response.status_code == 200 and "cannot be lower" in response.content.decode()
    assert Job.objects.get(pk=paid_job.pk).budget_cap == D("0.10")


def test_a_reviewer_approves_and_rejects_from_the_assignment_list(
    reviewer: Any, make_published_job, make_worker
) -> None:
    job = make_published_job(items=2, redundancy=1)
    worker = make_worker()
    good, bad = submit_work(job, worker), submit_work(job, worker)
    client = Client()
    client.force_login(reviewer)
    url = reverse("admin:tasks_assignment_changelist")
    client.post(url, {"action": "approve_selected", "_selected_action": [good.pk]})
    # Rejecting asks for the worker's feedback first (no fixed sentence), and refuses a blank one.
    form = client.post(url, {"action": "reject_selected", "_selected_action": [bad.pk]})
    assert form.status_code == 200 and 'name="feedback"' in form.content.decode()
    assert Assignment.objects.get(pk=bad.pk).state == AssignmentState.SUBMITTED
    blank = client.post(url, {"action": "reject_selected", "_selected_action": [bad.pk], "apply": "1", "feedback": " "})
    assert blank.status_code == 200 and Assignment.objects.get(pk=bad.pk).state == AssignmentState.SUBMITTED
    feedback = "Item 2 is a cat, not a dog: see rule 3."
    client.post(url, {"action": "reject_selected", "_selected_action": [bad.pk], "apply": "1", "feedback": feedback})
    assert Assignment.objects.get(pk=good.pk).state == AssignmentState.APPROVED
    assert Assignment.objects.get(pk=bad.pk).state == AssignmentState.REJECTED
    assert list(CostEntry.objects.values_list("assignment_id", flat=True)) == [good.pk]
    assert AuditEvent.objects.get(action="assignment.rejected").reason == feedback


def test_a_reviewer_pays_a_bonus_once_even_when_the_form_is_sent_twice(
    reviewer: Any, make_published_job, make_worker
) -> None:
    job = make_published_job(items=1, redundancy=1, budget_cap=D("1.00"))
    assignment = submit_work(job, make_worker())
    client = Client()
    client.force_login(reviewer)
    url = reverse("admin:tasks_assignment_changelist")
    form = client.post(url, {"action": "bonus_selected", "_selected_action": [assignment.pk]})
    assert 'name="amount"' in form.content.decode() and 'name="nonce"' in form.content.decode()
    data = {
        "action": "bonus_selected",
        "_selected_action": [assignment.pk],
        "apply": "1",
        "amount": "0.20",
        "reason": "Careful work",
        "nonce": "7f1d2b8e-0c55-4d3a-9a57-3c1c2d9e8b10",
    }
    for _ in range(2):
        client.post(url, data)
    bonus = CostEntry.objects.get(kind="bonus")
    assert (bonus.amount, bonus.assignment_id, bonus.memo) == (D("0.20"), assignment.pk, "Careful work")
    other = {**data, "nonce": "11111111-2222-3333-4444-555555555555", "amount": "5.00"}
    too_much = client.post(url, other, follow=True)
    assert "budget cap" in too_much.content.decode()
    assert CostEntry.objects.filter(kind="bonus").count() == 1


def test_an_ops_manager_sets_a_monthly_cap_through_the_service(ops_manager: Any) -> None:
    from workforce.models import AuditEvent

    client = Client()
    client.force_login(ops_manager)
    add = reverse("admin:tasks_monthlybudget_add")
    response = client.post(add, {"month": "2030-03-15", "cap": "250.00", "currency": "USD"})
    assert response.status_code == 302
    budget = MonthlyBudget.objects.get()
    assert (str(budget.month), budget.cap) == ("2030-03-01", D("250.00"))
    assert AuditEvent.objects.filter(action="budget.monthly_cap_set", object_id="2030-03-01:USD").exists()
    MonthlyBudget.objects.filter(pk=budget.pk).update(reserved=D("100"))
    change = reverse("admin:tasks_monthlybudget_change", args=[budget.pk])
    response = client.post(change, {"month": "2030-03-01", "cap": "50.00", "currency": "USD"})
    assert response.status_code == 200 and "cannot be lower" in response.content.decode()
    assert MonthlyBudget.objects.get().cap == D("250.00")


def test_the_job_report_shows_median_hourly_pay_and_warns_only_below_the_minimum(
    finance_client: Client, make_published_job: Any, make_worker: Any, settings: Any
) -> None:
    job = make_published_job(items=2, redundancy=1, reward=D("0.05"))
    worker = make_worker()
    submit_after(job, worker, 60)  # 0.05 a minute: 3.00 an hour
    submit_after(job, worker, 60)
    approve_assignments(job=job, actor=SYSTEM)
    url = reverse("admin:tasks_finance_job", args=[job.pk])
    settings.FAIR_PAY_MIN_HOURLY = None
    body = finance_client.get(url).content.decode()
    assert "<th>Median hourly pay</th><td>3.00</td>" in body and 'class="warning"' not in body
    settings.FAIR_PAY_MIN_HOURLY = "7.25"
    body = finance_client.get(url).content.decode()
    assert "3.00 (minimum 7.25)" in body
    assert '<li class="warning">Median effective pay is 3.00/hour, below the 7.25/hour minimum' in body


def test_the_admin_front_page_links_the_finance_dashboard_for_those_who_may_read_it(
    finance_client: Client, reviewer: Any
) -> None:
    dashboard = reverse("admin:tasks_finance_dashboard")
    page = finance_client.get(reverse("admin:index")).content.decode()
    assert f'href="{dashboard}"' in page and "CrowdOps administration" in page
    other = Client()
    other.force_login(reviewer)
    front = other.get(reverse("admin:index"))
    assert front.status_code == 200 and "Assignments" in front.content.decode()
    assert f'href="{dashboard}"' not in front.content.decode()


def test_the_cost_breakdown_names_kinds_and_workers_as_people_read_them(
    finance_client: Client, make_published_job: Any, make_worker: Any
) -> None:
    job = make_published_job(items=1, redundancy=1, reward=D("0.05"))
    worker = make_worker(display_name="Ada L.")
    submit_work(job, worker)
    approve_assignments(job=job, actor=SYSTEM)
    url = reverse("admin:tasks_finance_job", args=[job.pk])
    by_kind = finance_client.get(url + "?by=kind").content.decode()
    assert "<td>Internal pay</td>" in by_kind and "<td>internal_pay</td>" not in by_kind
    by_worker = finance_client.get(url + "?by=worker").content.decode()
    assert f"<td>{worker.external_id} (Ada L.)</td>" in by_worker
    from tasks.reports.selectors import list_cost_breakdown

    assert list_cost_breakdown(job, by="worker")[0]["worker_name"] == "Ada L."


def test_the_dashboard_adds_up_spend_per_marketplace_from_the_tallies(finance_client: Client) -> None:
    from tasks.models import CostKind
    from tasks.reports.selectors import list_job_costs, list_spend_by_marketplace
    from tasks.services.ledger import record_cost

    internal, mturk, other = JobFactory(), JobFactory(marketplace="mturk"), JobFactory(marketplace="mturk")
    for n, (job, amount, market) in enumerate(
        [
            (internal, "0.05", "internal"),
            (internal, "0.05", "internal"),
            (mturk, "1.25", "mturk"),
            (other, "0.10", "mturk"),
        ]
    ):
        record_cost(job=job, kind=CostKind.REWARD, amount=D(amount), idempotency_key=f"k{n}", marketplace=market)
    spend = {(r.marketplace, r.currency): (r.total, r.jobs) for r in list_spend_by_marketplace()}
    assert spend == {("internal", "USD"): (D("0.10"), 1), ("mturk", "USD"): (D("1.35"), 2)}
    assert {c.job: c.total for c in list_job_costs()} == {
        internal.pk: D("0.10"),
        mturk.pk: D("1.25"),
        other.pk: D("0.10"),
    }
    page = finance_client.get(reverse("admin:tasks_finance_dashboard")).content.decode()
    assert "<td>Amazon Mechanical Turk</td><td>1.35 USD</td><td>2</td>" in page
    assert "<td>Internal worker pool</td><td>0.10 USD</td><td>1</td>" in page
