"""Reconciliation against MTurk's records, read through boto3's mturk client under botocore's Stubber."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import boto3
import pytest
from botocore.stub import Stubber
from django.core.management import call_command
from django.utils import timezone

from tasks.models import Assignment, AssignmentState, Hit, HitState, Job
from tasks.reports.reconciliation import reconcile_mturk
from tasks.services.review import pay_bonus
from tests.conftest import SYSTEM
from tests.factories import JobFactory, WorkerFactory
from workforce.marketplaces import mturk_records
from workforce.marketplaces.base import MarketplaceError
from workforce.marketplaces.mturk_records import MTurkRecords

pytestmark = pytest.mark.django_db
D = Decimal
GRANTED = datetime(2026, 1, 2, tzinfo=UTC)


@pytest.fixture
def client():
    return boto3.client("mturk", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


def bonus(worker: str, assignment: str, amount: str) -> dict:
    return {"WorkerId": worker, "AssignmentId": assignment, "BonusAmount": amount, "Reason": "r", "GrantTime": GRANTED}


@pytest.fixture
def mturk_job(mturk, standin) -> tuple[Job, list]:
    """Two approved MTurk assignments, each bonused through ``review.pay_bonus`` (SendBonus on the stand-in)."""
    job = JobFactory(marketplace="mturk", state="published")
    hit = Hit.objects.create(
        job=job, assignments_wanted=2, marketplace="mturk", external_id="HIT1", state=HitState.OPEN
    )
    workers = [WorkerFactory(marketplace="mturk", user=None, external_id=f"W{i}") for i in range(2)]
    now = timezone.now()
    for i, worker in enumerate(workers):
        Assignment.objects.create(
            hit=hit, job=job, worker=worker, marketplace="mturk", external_id=f"A{i}", state=AssignmentState.APPROVED,
            accepted_at=now, lease_expires_at=now + timedelta(minutes=5), submitted_at=now, reward=D("0.10"),
        )  # fmt: skip
        standin.state.assignments[f"A{i}"] = {"AssignmentId": f"A{i}", "HITId": "HIT1", "WorkerId": f"W{i}"}
    pay_bonus(job=job, worker=workers[0], amount=D("0.50"), reason="good", key="b0", actor=SYSTEM)
    pay_bonus(job=job, worker=workers[1], amount=D("0.25"), reason="good", key="b1", actor=SYSTEM)
    return job, workers


def test_matching_records_report_no_difference(client, mturk_job):
    job, _ = mturk_job
    with Stubber(client) as stub:
        stub.add_response(
            "list_bonus_payments",
            {"BonusPayments": [bonus("W0", "A0", "0.50")], "NextToken": "page2"},
            {"HITId": "HIT1", "MaxResults": 100},
        )
        stub.add_response(
            "list_bonus_payments",
            {"BonusPayments": [bonus("W1", "A1", "0.25")]},
            {"HITId": "HIT1", "MaxResults": 100, "NextToken": "page2"},
        )
        result = reconcile_mturk(job=job, records=MTurkRecords(client))
        stub.assert_no_pending_responses()
    assert result.differences == [] and result.as_json()["matches"] is True
    assert result.ledger_bonus_total == result.marketplace_bonus_total == D("0.75")


def test_every_difference_is_reported(client, mturk_job):
    job, _ = mturk_job
    with Stubber(client) as stub:
        stub.add_response(
            "list_bonus_payments",
            {"BonusPayments": [bonus("W0", "A0", "0.50"), bonus("W9", "A9", "1.00")]},
            {"HITId": "HIT1", "MaxResults": 100},
        )
        stub.add_response("get_account_balance", {"AvailableBalance": "98.00"}, {})
        # The ledger booked 0.75 in bonuses + 0.15 in fees (20%) on MTurk: 100.00 opening should leave 99.10.
        result = reconcile_mturk(job=job, records=MTurkRecords(client), opening_balance=D("100.00"))
    kinds = sorted((d.kind, d.worker, d.ledger or d.marketplace) for d in result.differences)
    assert kinds == [
        ("balance", "", D("99.10")),
        ("missing_at_marketplace", "W1", D("0.25")),
        ("missing_in_ledger", "W9", D("1.00")),
    ]
    unknown = next(d for d in result.differences if d.kind == "missing_in_ledger")
    assert unknown.assignment == "A9" and "unknown" in unknown.detail
    assert next(d for d in result.differences if d.kind == "balance").marketplace == D("98.00")


def test_mturk_errors_say_whether_a_retry_can_help(client):
    with Stubber(client) as stub:
        stub.add_client_error("get_account_balance", service_error_code="ServiceFault", http_status_code=500)
        stub.add_client_error("get_account_balance", service_error_code="RequestError", http_status_code=400)
        stub.add_client_error("get_account_balance", service_error_code="AccessDenied", http_status_code=403)
        records = MTurkRecords(client)
        for permanent in (False, False, True):
            with pytest.raises(MarketplaceError) as caught:
                records.get_account_balance()
            assert caught.value.permanent is permanent


def test_the_command_prints_differences_and_exits_1(client, mturk_job, monkeypatch):
    job, _ = mturk_job
    monkeypatch.setattr(mturk_records, "mturk_records", lambda endpoint_url=None: MTurkRecords(client))
    with Stubber(client) as stub:
        stub.add_response("list_bonus_payments", {"BonusPayments": [bonus("W0", "A0", "0.50")]}, None)
        out = StringIO()
        with pytest.raises(SystemExit) as caught:
            call_command("reconcile_mturk", "--job", str(job.pk), "--json", stdout=out)
    assert caught.value.code == 1
    report = json.loads(out.getvalue())
    assert report["matches"] is False and report["differences"][0]["kind"] == "missing_at_marketplace"
