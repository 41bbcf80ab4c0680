"""A Masters job reserves MTurk's 5% Masters surcharge, so what its HITs commit stays within the estimate."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tasks.models import Job
from tasks.reports.estimate import estimate_job_cost, unit_fee
from tasks.services.budget import job_spent
from tasks.services.mturk_publishing import publish_mturk_hits
from tasks.services.publishing import publish_job
from tests.tasks.services.mturk_helpers import ACTOR, ledger_total, mturk_job
from workforce.marketplaces.mturk_fees import hit_cost

pytestmark = pytest.mark.django_db


def test_the_estimate_prices_the_masters_surcharge() -> None:
    plain = mturk_job(1, reward=Decimal("1.00"), redundancy=3)
    masters = mturk_job(1, reward=Decimal("1.00"), redundancy=3, mturk_options={"masters": True})
    assert unit_fee(plain) == Decimal("0.20")
    assert unit_fee(masters) == Decimal("0.25")
    expected = hit_cost(Decimal("1.00"), assignments_per_hit=3, hits=1, masters=True)
    assert estimate_job_cost(masters).total == expected.rewards + expected.fees


def test_a_masters_job_published_at_its_estimate_stays_within_its_cap(mturk: Any, standin: Any) -> None:
    job = mturk_job(4, reward=Decimal("1.00"), redundancy=3, mturk_options={"masters": True})
    estimate = estimate_job_cost(job)
    Job.objects.filter(pk=job.pk).update(budget_cap=estimate.total)
    job = publish_job(job=Job.objects.get(pk=job.pk), actor=ACTOR)
    publish_mturk_hits(job=job, actor=ACTOR, connector=mturk)
    job.refresh_from_db()
    assert ledger_total(job=job) == Decimal("15.00") == standin.state.total_charged()
    assert job.budget_reserved == estimate.total == Decimal("15.00")
    assert job_spent(job) <= job.budget_cap
