"""The per-job tallies the database triggers keep: they follow every write, whoever makes it, and the
recount service repairs them. The same tests run on SQLite (row triggers) and PostgreSQL (statement triggers).
"""

from __future__ import annotations

from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db.models import Sum
from django.utils import timezone

from tasks.console_selectors import get_cost_summary
from tasks.models import ConsensusLabel, CostEntry, Hit, HitState, Item, JobCostTally, JobTally
from tasks.selectors import JobTotals, get_job_progress, get_job_totals
from tasks.services.gold import promote_consensus_to_gold
from tasks.services.more_answers import request_more_answers
from tasks.services.pool import assign_next_hit, return_assignment
from tasks.services.publishing import cancel_job
from tasks.services.review import approve_assignment, pay_bonus
from tasks.services.tallies import count_job_rows, recount_tallies
from tests.conftest import SYSTEM
from tests.factories import ItemFactory
from tests.tasks.finance_helpers import submit_work
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db


def counted(job: Any) -> JobTotals:
    return JobTotals(**count_job_rows([job.pk]).get(job.pk, {}))


def ledger(job: Any) -> Decimal:
    return CostEntry.objects.filter(job=job).aggregate(t=Sum("amount"))["t"] or Decimal("0")


def test_the_tallies_follow_a_job_from_import_to_cancellation(make_published_job: Any, make_worker: Any) -> None:
    job = make_published_job(items=6, redundancy=2)
    assert get_job_totals(job) == counted(job) == JobTotals(hits=6, answers_wanted=12, items=6)
    first, second = make_worker(), make_worker()

    lease = assign_next_hit(job=job, worker=first)
    assert get_job_totals(job).slots_taken == 1
    return_assignment(assignment=lease, worker=first)
    assert get_job_totals(job).slots_taken == 0

    done = [submit_work(job, first), submit_work(job, second), submit_work(job, first)]
    assert get_job_progress(job).answers_submitted == 3
    assert get_job_totals(job) == counted(job)

    for assignment in done:
        approve_assignment(assignment=assignment, actor=SYSTEM)
    pay_bonus(job=job, worker=first, amount=Decimal("0.25"), reason="Careful work", key="t-1", actor=SYSTEM)
    assert get_cost_summary(job).total == ledger(job).quantize(Decimal("0.0001")) > 0

    assert request_more_answers(job=job, actor=SYSTEM, extra=1).hits > 0
    assert get_job_totals(job) == counted(job)

    ItemFactory(job=job, is_gold=True, gold_answer="pos")
    assert (get_job_totals(job).items, get_job_totals(job).gold_items) == (6, 1)

    cancel_job(job=job, actor=SYSTEM)
    totals = get_job_totals(job)
    assert totals == counted(job)
    assert totals.hits == Hit.objects.filter(job=job, is_gold=False).exclude(state=HitState.CANCELLED).count()


def test_bulk_updates_and_gold_promotion_are_counted_once(make_published_job: Any) -> None:
    job = make_published_job(items=5)
    Hit.objects.filter(job=job).update(assignments_wanted=5, priority=3)
    assert get_job_totals(job).answers_wanted == 25
    Hit.objects.filter(job=job).update(priority=1)  # no counted column: nothing changes
    items = list(Item.objects.filter(job=job).order_by("id")[:2])
    for item in items:
        ConsensusLabel.objects.create(
            job=job,
            item=item,
            value="pos",
            confidence=0.95,
            probabilities={},
            method="mv",
            version=1,
            parameters={},
            answers_count=3,
            created_at=timezone.now(),
        )
    assert promote_consensus_to_gold(job=job, item_ids=[i.pk for i in items], actor=SYSTEM) == 2
    totals = get_job_totals(job)
    assert (totals.items, totals.gold_items) == (3, 2)
    assert totals == counted(job)


def test_recount_repairs_wrong_tallies_and_is_audited(make_published_job: Any, make_worker: Any) -> None:
    job = make_published_job(items=4)
    approve_assignment(assignment=submit_work(job, make_worker()), actor=SYSTEM)
    right, cost = get_job_totals(job), get_cost_summary(job).total
    JobTally.objects.filter(job=job).update(hits=99, answers_submitted=0)
    JobCostTally.objects.filter(job=job).update(amount=Decimal("1000"))
    assert get_job_totals(job) != right

    result = recount_tallies(actor=SYSTEM, job_ids=[job.pk])
    assert result.corrected == [job.pk]
    assert get_job_totals(job) == right and get_cost_summary(job).total == cost
    assert AuditEvent.objects.filter(action="tallies.recounted", object_id=str(job.pk)).exists()
    assert recount_tallies(actor=SYSTEM).corrected == []  # right again: nothing to correct


def test_the_recount_command_reports_what_it_corrected(make_published_job: Any) -> None:
    job = make_published_job(items=3)
    JobTally.objects.filter(job=job).delete()
    out = StringIO()
    call_command("recount_tallies", "--job", str(job.pk), stdout=out)
    assert f"corrected 1 of 1 job(s): {job.pk}" in out.getvalue()
    assert get_job_totals(job) == counted(job) == JobTotals(hits=3, answers_wanted=9, items=3)


def test_the_recount_command_refuses_a_missing_job(db: Any) -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="No job 424242"):
        call_command("recount_tallies", "--job", "424242")
