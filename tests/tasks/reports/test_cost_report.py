"""cost_report: the figures finance trusts, after a simulated crowd and on hand-made ledgers."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tasks.models import ConsensusLabel, CostKind
from tasks.reports.charts import bar_chart, line_chart
from tasks.reports.exports import export_cost_breakdown
from tasks.reports.fair_pay import get_fair_pay
from tasks.reports.selectors import get_cost_report, list_cost_breakdown, list_job_costs
from tasks.services.ledger import record_cost
from tasks.services.review import pay_bonus
from tasks.services.review_batch import approve_assignments
from tests.conftest import SYSTEM
from tests.tasks.finance_helpers import submit_after, submit_work

pytestmark = pytest.mark.django_db
D = Decimal


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.mark.parametrize("gold_rate", ["0", "0.1"])
def test_after_a_simulated_crowd_the_total_is_the_reward_times_approved_work(gold_rate: str) -> None:
    sim = json.loads(
        run("simulate_crowd", "--items", "24", "--workers", "5", "--seed", "7", "--reward", "0.05",
            "--gold-rate", gold_rate, "--json")
    )  # fmt: skip
    report = json.loads(run("cost_report", "--job", str(sim["job"]), "--format", "json"))
    assert {"job", "currency", "total", "approved_assignments", "labels", "cost_per_label"} <= set(report)
    assert report["job"] == sim["job"] and report["currency"] == "USD"
    assert report["approved_assignments"] == sim["approved_assignments"] > 0
    assert D(report["total"]) == D("0.05") * report["approved_assignments"]
    assert report["labels"] == 24 == ConsensusLabel.objects.filter(job_id=sim["job"]).count()
    assert D(report["cost_per_label"]) == (D(report["total"]) / report["labels"]).quantize(D("0.01"))
    assert sim["total_cost"] == report["total"]
    # All work is reviewed, so the job's reservation is settled down to what it spent.
    assert D(report["budget_reserved"]) == D(report["total"])


def test_the_report_breaks_costs_down_by_worker_marketplace_and_day(make_published_job, make_worker) -> None:
    job = make_published_job(items=3, redundancy=1, reward=D("0.05"))
    first, second = make_worker(), make_worker()
    submit_work(job, first)
    submit_work(job, first)
    submit_work(job, second)
    approve_assignments(job=job, actor=SYSTEM)
    pay_bonus(job=job, worker=second, amount=D("0.25"), reason="Careful work", key="bonus-1", actor=SYSTEM)
    by_worker = {row["worker"]: row for row in list_cost_breakdown(job, by="worker")}
    assert by_worker[first.external_id]["total"] == D("0.10") and by_worker[first.external_id]["assignments"] == 2
    assert by_worker[second.external_id]["total"] == D("0.30") and by_worker[second.external_id]["entries"] == 2
    assert [(r["marketplace"], r["total"]) for r in list_cost_breakdown(job, by="marketplace")] == [
        ("internal", D("0.40"))
    ]
    days = list_cost_breakdown(job, by="day")
    assert len(days) == 1 and days[0]["total"] == D("0.40")
    report = get_cost_report(job)
    assert report.by_kind == {CostKind.BONUS: D("0.25"), CostKind.INTERNAL_PAY: D("0.15")}
    assert report.labels == 0 and report.cost_per_label is None
    assert report.forecast.remaining_assignments == 0 and report.forecast.projected_total == D("0.40")


def test_reversals_count_against_the_total(make_published_job) -> None:
    job = make_published_job(items=1, redundancy=1)
    entry, _ = record_cost(job=job, kind=CostKind.REWARD, amount=D("1.10"), idempotency_key="x", marketplace="internal")
    from tasks.services.ledger import reverse_cost

    reverse_cost(entry=entry, idempotency_key="x:rev")
    assert get_cost_report(job).total == D("0")


def test_the_forecast_projects_remaining_work_at_the_observed_cost(make_published_job, make_worker) -> None:
    job = make_published_job(items=4, redundancy=1, reward=D("0.05"))
    submit_work(job, make_worker())
    approve_assignments(job=job, actor=SYSTEM)
    forecast = get_cost_report(job).forecast
    assert forecast.remaining_assignments == 3
    assert forecast.projected_total == D("0.20")
    assert forecast.assignments_per_day is not None and forecast.days_to_completion is not None
    from tasks.models import Hit, HitState

    # A cancelled Hit will not be done: it is not remaining work.
    Hit.objects.filter(pk=Hit.objects.filter(job=job, state=HitState.OPEN).order_by("id").values("id")[:1]).update(
        state=HitState.CANCELLED
    )
    assert get_cost_report(job).forecast.remaining_assignments == 2


def test_csv_and_xlsx_exports_hold_the_same_rows(make_published_job, make_worker) -> None:
    import openpyxl

    job = make_published_job(items=2, redundancy=1, reward=D("0.05"))
    worker = make_worker()
    submit_work(job, worker)
    submit_work(job, worker)
    approve_assignments(job=job, actor=SYSTEM)
    rows = list(
        csv.DictReader(io.StringIO(run("cost_report", "--job", str(job.pk), "--by", "worker", "--format", "csv")))
    )
    assert rows == [
        {
            "worker": worker.external_id,
            "worker_id": str(worker.pk),
            "total": "0.1000",
            "entries": "2",
            "assignments": "2",
        }
    ]
    book = openpyxl.load_workbook(io.BytesIO(export_cost_breakdown(job, by="worker", fmt="xlsx")))
    assert book.sheetnames == ["summary", "by worker"]
    sheet = list(book["by worker"].values)
    assert sheet[0] == ("worker", "worker_id", "total", "entries", "assignments")
    assert sheet[1][0] == worker.external_id and D(str(sheet[1][2])) == D("0.1")
    summary = dict(list(book["summary"].values)[1:])
    assert summary["approved_assignments"] == 2


def test_bad_input_exits_with_code_2() -> None:
    with pytest.raises(CommandError, match="no job with id 999") as caught:
        run("cost_report", "--job", "999")
    assert caught.value.returncode == 2
    with pytest.raises(CommandError, match="--reward"):
        run("simulate_crowd", "--reward", "abc", "--items", "2")


def test_fair_pay_flags_a_low_median_and_tops_it_up(make_published_job, make_worker) -> None:
    from tasks.services.fair_pay import top_up_fair_pay

    job = make_published_job(items=2, redundancy=1, reward=D("0.05"))
    worker = make_worker()
    submit_after(job, worker, seconds=360)  # 0.05 for 6 minutes: 0.50/hour
    approve_assignments(job=job, actor=SYSTEM)
    check = get_fair_pay(job, minimum=D("12.00"))
    assert check.median_hourly == D("0.50") and not check.ok and "below" in check.warning
    assert [w.worker for w in check.below] == [worker.pk]
    paid = top_up_fair_pay(job=job, actor=SYSTEM, minimum=D("12.00"))
    assert paid == D("1.15")  # 12/hour x 0.1 hours = 1.20, less 0.05 paid
    assert get_fair_pay(job, minimum=D("12.00")).ok
    assert top_up_fair_pay(job=job, actor=SYSTEM, minimum=D("12.00")) == 0


def test_job_costs_and_charts_render(make_published_job, make_worker) -> None:
    job = make_published_job(items=1, redundancy=1, reward=D("0.05"))
    submit_work(job, make_worker())
    approve_assignments(job=job, actor=SYSTEM)
    costs = {c.job: c for c in list_job_costs()}
    assert costs[job.pk].total == D("0.05") and costs[job.pk].cost_per_label is None
    svg = line_chart([("2026-01-01", D("1")), ("2026-01-02", D("3"))], title="Spend <per> day", limit=D("4"))
    assert (
        svg.startswith("<svg") and "Spend &lt;per&gt; day" in svg and "<polyline" in svg and "stroke-dasharray" in svg
    )
    bars = bar_chart([("job <a>", D("0.5")), ("b", D("1"))], title="Cost per label")
    assert bars.count("<rect") == 2 and "job &lt;a&gt;" in bars
    assert "No data yet" in line_chart([], title="empty")


def test_active_time_is_summed_per_worker_and_each_assignment_is_capped_at_its_duration(
    make_published_job, make_worker
) -> None:
    from tasks.reports.selectors import list_worker_hourly_pay

    job = make_published_job(items=3, redundancy=1, reward=D("0.05"))  # 10-minute assignments
    steady, slow = make_worker(), make_worker()
    submit_after(job, steady, seconds=60)
    submit_after(job, steady, seconds=3600)  # left open for an hour: counts as 10 minutes
    submit_after(job, slow, seconds=120)
    approve_assignments(job=job, actor=SYSTEM)
    pay = {w.worker: w for w in list_worker_hourly_pay(job)}
    assert pay[steady.pk].hours == pytest.approx(660 / 3600, rel=1e-3)
    assert pay[steady.pk].hourly == D("0.55")  # 0.10 over 11 minutes
    assert pay[slow.pk].hours == pytest.approx(120 / 3600, rel=1e-3) and pay[slow.pk].hourly == D("1.50")
