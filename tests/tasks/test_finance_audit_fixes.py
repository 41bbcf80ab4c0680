"""Finance audit (``audit/finance.md``), findings F4-F7: what the finance figures say agrees with the ledger.

- F7: a Ground Truth job completed by collection is audited (``job.completed``), in one transaction.
- F5: hourly pay and the fair-pay top-up count reversals of pay and bonuses; hours stay exact.
- F6: MTurk's escrow slots are not paid assignments, and the forecast does not add escrow twice.
- F4: the export's per-label ``cost`` column adds up to the job's ledger total.
- F9: the finance dashboard and job report take a period (since/until), and finance exports the ledger's
  rows for a period across jobs.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any, cast

import pytest
from django.core.management import call_command
from django.db.models import F, Sum
from django.test import Client
from django.urls import reverse

from tasks.label_selectors import ExportOptions, iter_labels
from tasks.models import Assignment, ConsensusLabel, CostEntry, CostKind, Hit, Job, JobState, LabelingJob
from tasks.reports.fair_pay import get_fair_pay
from tasks.reports.selectors import get_cost_report, list_cost_breakdown, list_worker_hourly_pay
from tasks.services.fair_pay import top_up_fair_pay
from tasks.services.ledger import record_cost, reverse_cost
from tasks.services.review import approve_assignment, pay_bonus, reject_assignment
from tasks.services.review_batch import approve_assignments
from tests.conftest import SYSTEM
from tests.factories import JobFactory
from tests.mturk_fixtures import aws_env, mturk, standin, stubbed  # noqa: F401
from tests.tasks.finance_helpers import submit_after, submit_work
from tests.tasks.groundtruth.data import BBOX_MANIFEST, labeled_objects
from workforce.audit import Actor, seal_all_audit_events
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
D = Decimal
TIERS = [(2, "0.08"), (4, "0.04"), (None, "0.02")]


def ledger_total(job: Job) -> Decimal:
    return CostEntry.objects.filter(job=job).aggregate(total=Sum("amount"))["total"] or D(0)


def pay_row(job: Job, worker: Any) -> CostEntry:
    entry = CostEntry.objects.filter(job=job, worker=worker, kind=CostKind.INTERNAL_PAY).order_by("id").first()
    assert entry is not None
    return entry


def new_job(**fields: Any) -> Job:
    return cast(Job, JobFactory(**fields))


# F7 ------------------------------------------------------------------------------------------------------------


class CompletedOutput:
    """A connector whose labeling job has completed and written its output manifest."""

    def __init__(self, manifest: str) -> None:
        self.manifest = manifest

    def collect(self, state: Any) -> Any:
        from workforce.marketplaces.groundtruth.connector import CollectedOutput

        return CollectedOutput(manifest_text=self.manifest, manifest_is_output=True, worker_files=[])


def running_labeling_job(settings: Any) -> tuple[LabelingJob, Any, Any]:
    from tasks.services.groundtruth.importing import import_groundtruth_output
    from tasks.services.groundtruth.running import configure_labeling_job
    from workforce.marketplaces.groundtruth.connector import LabelingJobState

    settings.GROUNDTRUTH_OBJECT_PRICE_TIERS = TIERS
    lines = [json.loads(line) for line in BBOX_MANIFEST.read_text().splitlines() if line.strip()]
    manifest = "\n".join(json.dumps({"source-ref": line["source-ref"]}) for line in lines)
    result = import_groundtruth_output(
        manifest_text=manifest,
        responses=[],
        actor=SYSTEM,
        new_job_name="boxes",
        require_labels=False,
        label_attribute="crowdops-label",
    )
    labeling_job = configure_labeling_job(job=Job.objects.get(pk=result.job), actor=SYSTEM, task_type="BoundingBox")
    Job.objects.filter(pk=labeling_job.job_id).update(state=JobState.PUBLISHED)  # the labeling job is running
    state = LabelingJobState(
        name=labeling_job.name, arn="arn:x", status="Completed", output_manifest_uri="s3://b/out.manifest"
    )
    return labeling_job, CompletedOutput(manifest), state


def test_a_ground_truth_job_completed_by_collection_records_job_completed(settings: Any) -> None:
    from tasks.services.groundtruth.running import collect_labeling_job

    labeling_job, connector, state = running_labeling_job(settings)
    seal_all_audit_events()
    last = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    follower = Actor.system("gt follower")
    collect_labeling_job(labeling_job=labeling_job, actor=follower, connector=connector, state=state)
    collect_labeling_job(labeling_job=labeling_job, actor=follower, connector=connector, state=state)  # again
    seal_all_audit_events()
    job = Job.objects.get(pk=labeling_job.job_id)
    assert job.state == JobState.COMPLETED and job.completed_at is not None
    completed = list(
        AuditEvent.objects.filter(id__gt=last, action="job.completed").values_list(
            "object_type", "object_id", "before", "after"
        )
    )
    assert completed == [("job", str(job.pk), {"state": "published"}, {"state": "completed"})]


def test_a_ground_truth_completion_whose_audit_fails_leaves_the_job_published(settings: Any, monkeypatch: Any) -> None:
    from tasks.services.groundtruth import running

    labeling_job, connector, state = running_labeling_job(settings)
    real = running.record_audit_event

    def failing(**event: Any) -> Any:
        if event.get("action") == "job.completed":
            raise RuntimeError("audit store down")
        return real(**event)

    monkeypatch.setattr(running, "record_audit_event", failing)
    with pytest.raises(RuntimeError, match="audit store down"):
        running.collect_labeling_job(labeling_job=labeling_job, actor=SYSTEM, connector=connector, state=state)
    assert Job.objects.get(pk=labeling_job.job_id).state == JobState.PUBLISHED
    assert LabelingJob.objects.get(pk=labeling_job.pk).collected_at is None  # collected again next time


# F5 ------------------------------------------------------------------------------------------------------------


def test_hourly_pay_is_net_of_reversed_pay_and_bonuses(make_published_job, make_worker) -> None:
    job = make_published_job(items=2, redundancy=1, reward=D("0.05"))
    worker = make_worker()
    submit_after(job, worker, seconds=300)
    submit_after(job, worker, seconds=300)
    approve_assignments(job=job, actor=SYSTEM)
    pay_bonus(job=job, worker=worker, amount=D("0.20"), reason="Careful work", key="b1", actor=SYSTEM)
    reverse_cost(entry=pay_row(job, worker), idempotency_key="pay:rev")
    reverse_cost(entry=CostEntry.objects.get(idempotency_key="bonus:b1"), idempotency_key="bonus:rev")
    [pay] = list_worker_hourly_pay(job)
    assert pay.paid == D("0.05")  # 0.05 + 0.05 + 0.20, less 0.05 and 0.20 reversed
    assert pay.hourly == D("0.30")  # over 10 minutes


def test_the_fair_pay_top_up_makes_up_for_reversed_pay(make_published_job, make_worker) -> None:
    job = make_published_job(items=2, redundancy=1, reward=D("0.05"))
    worker = make_worker()
    submit_after(job, worker, seconds=360)  # 0.1 hours: 1.20 at 12/hour
    approve_assignments(job=job, actor=SYSTEM)
    reverse_cost(entry=pay_row(job, worker), idempotency_key="pay:rev")
    assert top_up_fair_pay(job=job, actor=SYSTEM, minimum=D("12.00")) == D("1.20")
    assert get_fair_pay(job, minimum=D("12.00")).ok
    assert top_up_fair_pay(job=job, actor=SYSTEM, minimum=D("12.00")) == 0


def test_a_reversal_after_a_top_up_is_topped_up_again(make_published_job, make_worker) -> None:
    job = make_published_job(items=2, redundancy=1, reward=D("0.05"))
    worker = make_worker()
    submit_after(job, worker, seconds=360)
    approve_assignments(job=job, actor=SYSTEM)
    assert top_up_fair_pay(job=job, actor=SYSTEM, minimum=D("12.00")) == D("1.15")
    reverse_cost(entry=pay_row(job, worker), idempotency_key="pay:rev")
    assert top_up_fair_pay(job=job, actor=SYSTEM, minimum=D("12.00")) == D("0.05")
    assert list_worker_hourly_pay(job)[0].paid == D("1.20")


def test_the_top_up_reckons_from_exact_seconds(make_published_job, make_worker) -> None:
    job = make_published_job(items=2, redundancy=1, reward=D("0.01"))
    worker = make_worker()
    assignment = submit_after(job, worker, seconds=100)
    approve_assignments(job=job, actor=SYSTEM)
    active = timedelta(seconds=123, microseconds=456700)
    Assignment.objects.filter(pk=assignment.pk).update(submitted_at=F("accepted_at") + active)
    [pay] = list_worker_hourly_pay(job)
    assert pay.seconds == D("123.4567") and isinstance(pay.seconds, Decimal)
    # 100/hour x 123.4567 s = 3.4293527..., less the 0.01 paid
    assert top_up_fair_pay(job=job, actor=SYSTEM, minimum=D("100")) == D("3.42")


# F6 ------------------------------------------------------------------------------------------------------------


def test_mturk_escrow_slots_are_not_paid_assignments_and_are_not_forecast_twice(mturk, standin) -> None:  # noqa: F811
    from tasks.services.mturk_collect import collect_mturk_work
    from tests.tasks.services.mturk_helpers import ACTOR, published_mturk_job

    job = published_mturk_job(mturk, 2)  # 2 HITs x 3 slots, escrowed at 0.05 + 0.01 each
    hits = list(Hit.objects.filter(job=job).order_by("id"))
    ids = []
    for hit, worker in ((hits[0], "AW1"), (hits[1], "AW2")):
        external = standin.state.accept(str(hit.external_id), worker)
        standin.state.external_submit([("assignmentId", external), (f"item:{hit.items.get().external_id}", "pos")])
        ids.append(external)
    collect_mturk_work(actor=ACTOR, connector=mturk)
    first, second = (Assignment.objects.get(external_id=x) for x in ids)
    approve_assignment(assignment=first, actor=ACTOR)
    reject_assignment(assignment=second, actor=ACTOR, feedback="no")
    pay_bonus(job=job, worker=first.worker, amount=D("0.50"), reason="thanks", key="k1", actor=ACTOR, assignment=first)
    assert ledger_total(job) == D("0.90") == D(str(standin.state.total_charged()))  # 0.66 charged + 4 open slots
    assert [r["assignments"] for r in list_cost_breakdown(job, by="marketplace")] == [1]
    by_worker = {r["worker"]: r["assignments"] for r in list_cost_breakdown(job, by="worker")}
    assert by_worker == {"": 0, "AW1": 1}
    report = get_cost_report(job)
    forecast = report.forecast
    assert forecast.remaining_assignments == 4
    assert forecast.cost_per_assignment == D("0.06")  # the reward and fee charged, not the bonus or the escrow
    assert forecast.committed_escrow == D("0.24")
    assert forecast.projected_total == report.total == D("0.90")  # every open slot is already in escrow


def test_the_forecast_leaves_bonuses_out_of_the_cost_per_assignment(make_published_job, make_worker) -> None:
    job = make_published_job(items=4, redundancy=1, reward=D("0.05"))
    worker = make_worker()
    submit_work(job, worker)
    approve_assignments(job=job, actor=SYSTEM)
    pay_bonus(job=job, worker=worker, amount=D("0.25"), reason="Careful work", key="b1", actor=SYSTEM)
    forecast = get_cost_report(job).forecast
    assert forecast.cost_per_assignment == D("0.05") and forecast.committed_escrow == 0
    assert forecast.projected_total == D("0.30") + D("0.05") * 3


# F4 ------------------------------------------------------------------------------------------------------------


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def export_costs(job: Job, **options: Any) -> list[Decimal]:
    return [row.cost for row in iter_labels(job, ExportOptions(cost=True), **options)]  # type: ignore[misc]


def test_the_cost_column_adds_up_to_the_ledger_with_gold_and_a_bonus_without_an_assignment() -> None:
    sim = json.loads(
        run("simulate_crowd", "--items", "30", "--workers", "6", "--seed", "3", "--reward", "0.07",
            "--items-per-hit", "3", "--gold-rate", "0.1", "--json")
    )  # fmt: skip
    job = Job.objects.get(pk=sim["job"])
    worker = Assignment.objects.filter(job=job, state="approved").order_by("id").first()
    assert worker is not None
    pay_bonus(job=job, worker=worker.worker, amount=D("0.10"), reason="Thanks", key="b", actor=SYSTEM)
    assert CostEntry.objects.filter(job=job, assignment__in=Assignment.objects.filter(hit__is_gold=False)).exists()
    costs = export_costs(job)
    assert len(costs) == ConsensusLabel.objects.filter(job=job).count() == 30
    assert sum(costs, D(0)) == ledger_total(job)
    assert all(c > 0 and c == c.quantize(D("0.0001")) for c in costs)
    # chunks carry the rounding on: the same column whatever the chunk size
    assert export_costs(job, chunk_size=7) == costs


def test_the_cost_column_spreads_ground_truth_object_charges_over_the_labels(settings: Any) -> None:
    from tasks.services.groundtruth.costs import Pricing, book_groundtruth_costs
    from tasks.services.groundtruth.importing import import_groundtruth_output
    from tasks.services.groundtruth.running import configure_labeling_job

    settings.GROUNDTRUTH_OBJECT_PRICE_TIERS = TIERS
    result = import_groundtruth_output(
        manifest_text=BBOX_MANIFEST.read_text(), responses=[], actor=SYSTEM, new_job_name="boxes"
    )
    job = Job.objects.get(pk=result.job)
    book_groundtruth_costs(
        job=job,
        pricing=Pricing.of(configure_labeling_job(job=job, actor=SYSTEM, task_type="BoundingBox")),
        objects=labeled_objects(job),
    )
    total = ledger_total(job)
    assert total == D("0.08") * 2 + D("0.04") * 2 + D("0.02") * 96
    costs = export_costs(job)
    assert costs and sum(costs, D(0)) == total


def test_export_labels_cost_column_adds_up_to_the_ledger(make_published_job, make_worker, tmp_path: Path) -> None:
    from tasks.services.consensus import compute_consensus

    job = make_published_job(items=3, redundancy=1, reward=D("0.10"))
    worker = make_worker()
    for _ in range(3):
        submit_work(job, worker)
    approve_assignments(job=job, actor=SYSTEM)
    pay_bonus(job=job, worker=worker, amount=D("0.05"), reason="Thanks", key="b", actor=SYSTEM)  # 0.35 in all
    compute_consensus(job=job, actor=SYSTEM)
    out = tmp_path / "labels.csv"
    run("export_labels", "--job", str(job.pk), "--format", "csv", "--output", str(out), "--cost")
    rows = list(csv.DictReader(out.open()))
    assert [row["cost_usd"] for row in rows] == ["0.1167", "0.1166", "0.1167"]
    assert sum((D(row["cost_usd"]) for row in rows), D(0)) == ledger_total(job) == D("0.35")


# F9 ------------------------------------------------------------------------------------------------------------


def book(job: Job, amount: str, key: str, *, on: str | None = None, memo: str = "") -> CostEntry:
    entry, _ = record_cost(
        job=job, kind=CostKind.REWARD, amount=D(amount), idempotency_key=key, marketplace="internal", memo=memo
    )
    if on is not None:  # booked on that day (rows are append-only: set up through the queryset)
        CostEntry.objects.filter(pk=entry.pk).update(created_at=datetime.fromisoformat(f"{on}T12:00:00+00:00"))
    return entry


def test_the_dashboard_shows_the_period_asked_for(finance_client: Client) -> None:
    january, today = new_job(name="January job"), new_job(name="Today's job")
    book(january, "1.25", "j1", on="2020-01-10")
    book(january, "2.00", "j2", on="2020-02-01")  # the day after the period
    book(today, "3.00", "t1")
    url = reverse("admin:tasks_finance_dashboard")
    response = finance_client.get(url, {"since": "2020-01-01", "until": "2020-01-31"})
    assert response.status_code == 200
    assert [(j.job, j.total) for j in response.context["jobs"]] == [(january.pk, D("1.25"))]
    assert [(r.marketplace, r.total) for _, r in response.context["by_marketplace"]] == [("internal", D("1.25"))]
    assert "ledger.csv?since=2020-01-01&amp;until=2020-01-31" in response.content.decode()
    everything = finance_client.get(url)
    assert {j.job: j.total for j in everything.context["jobs"]} == {january.pk: D("3.25"), today.pk: D("3.00")}


@pytest.mark.parametrize(
    ("query", "field"), [({"since": "2020-13-45"}, "since"), ({"since": "2020-02-01", "until": "2020-01-01"}, "until")]
)
def test_a_bad_period_is_a_form_error(finance_client: Client, query: dict[str, str], field: str) -> None:
    job = new_job()
    book(job, "1.00", "k")
    for url in (reverse("admin:tasks_finance_dashboard"), reverse("admin:tasks_finance_job", args=[job.pk])):
        response = finance_client.get(url, query)
        assert response.status_code == 400  # the form's error and no figures (test_period_bounds)
        assert response.context["period_form"].errors[field]
        assert "errorlist" in response.content.decode()
    export = finance_client.get(reverse("admin:tasks_finance_ledger_export"), query)
    assert export.status_code == 400 and field in export.content.decode()


def test_the_job_report_breakdown_and_its_export_hold_the_period(finance_client: Client) -> None:
    job = new_job()
    book(job, "1.25", "j1", on="2020-01-10")
    book(job, "2.00", "j2", on="2020-03-01")
    response = finance_client.get(
        reverse("admin:tasks_finance_job", args=[job.pk]), {"by": "kind", "since": "2020-01-01", "until": "2020-01-31"}
    )
    assert response.status_code == 200
    assert [(r["kind"], r["total"]) for r in response.context["rows"]] == [("reward", D("1.25"))]
    assert response.context["report"].total == D("3.25")  # the headline figures stay the job's to date
    export = finance_client.get(
        reverse("admin:tasks_finance_export", args=[job.pk, "kind", "csv"]), {"since": "2020-01-01"}
    )
    rows = list(csv.DictReader(StringIO(export.content.decode())))
    assert [(r["kind"], r["total"]) for r in rows] == [("reward", "3.2500")]
    export = finance_client.get(
        reverse("admin:tasks_finance_export", args=[job.pk, "kind", "csv"]), {"until": "2020-01-31"}
    )
    assert [(r["kind"], r["total"]) for r in csv.DictReader(StringIO(export.content.decode()))] == [
        ("reward", "1.2500")
    ]


def test_finance_exports_the_ledger_rows_of_a_period_across_jobs(finance_client: Client) -> None:
    first, second = new_job(name="=cmd()"), new_job()
    paid = book(first, "1.25", "a", on="2020-01-01", memo="@SUM(A1)")
    book(second, "0.0500", "b", on="2020-01-31")
    book(second, "9.00", "c", on="2020-02-01")
    reversal, _ = reverse_cost(entry=paid, idempotency_key="a:rev")
    CostEntry.objects.filter(pk=reversal.pk).update(created_at=datetime.fromisoformat("2020-01-15T00:00:00+00:00"))
    response = finance_client.get(
        reverse("admin:tasks_finance_ledger_export"), {"since": "2020-01-01", "until": "2020-01-31"}
    )
    assert response.status_code == 200 and response.streaming and response["Content-Type"] == "text/csv"
    assert 'filename="ledger-2020-01-01-to-2020-01-31.csv"' in response["Content-Disposition"]
    content = b"".join(getattr(response, "streaming_content"))  # noqa: B009  (streamed: no .content)
    rows = list(csv.DictReader(StringIO(content.decode())))
    assert [(r["idempotency_key"], r["amount"], r["currency"], r["kind"]) for r in rows] == [
        ("a", "1.2500", "USD", "reward"),
        ("b", "0.0500", "USD", "reward"),
        ("a:rev", "-1.2500", "USD", "reversal"),
    ]
    assert rows[0]["job"] == "'=cmd()" and rows[0]["memo"] == "'@SUM(A1)"  # not run as spreadsheet formulas
    assert rows[2]["reverses_id"] == str(paid.pk) and rows[0]["created_at"] == "2020-01-01T12:00:00+00:00"
    assert sum((D(r["amount"]) for r in rows), D(0)) == D("0.05")


def test_the_ledger_export_reads_in_chunks_without_a_query_per_row(django_assert_max_num_queries: Any) -> None:
    from tasks.reports.exports import iter_ledger_csv
    from tasks.reports.period import Period

    job = new_job()
    for n in range(12):
        book(job, "0.01", f"k{n}")
    with django_assert_max_num_queries(4):  # 12 rows in chunks of 5: three chunks and the empty read that ends
        lines = list(iter_ledger_csv(Period(), chunk_size=5))
    assert "".join(lines).count("\n") == 13


def test_the_job_page_forecast_of_an_mturk_job_does_not_count_its_escrow_twice(mturk, standin) -> None:  # noqa: F811
    from tasks.dashboard import compute_job_dashboard
    from tests.tasks.services.mturk_helpers import ledger_total, published_mturk_job

    job = published_mturk_job(mturk, 3, redundancy=2)
    committed = ledger_total(job=job)
    assert committed > 0  # every slot's reward and fee, held in escrow
    assert compute_job_dashboard(job).forecast == committed
