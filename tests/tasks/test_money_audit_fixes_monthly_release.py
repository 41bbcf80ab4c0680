"""Money audit, finding 4: a release is given back to the month(s) its amount was reserved in (oldest
first), not to the month of the job's latest reservation, so another month's cap is never exceeded."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tasks.models import BudgetReservation, Job, MonthlyBudget
from tasks.services.budget import BudgetExceeded, month_of, release_budget, reserve_budget, set_monthly_cap
from tasks.services.publishing import cancel_job
from tests.conftest import SYSTEM
from tests.factories import JobFactory
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
D = Decimal
OCT, NOV = datetime(2026, 10, 15, tzinfo=UTC), datetime(2026, 11, 10, tzinfo=UTC)


def _counter(moment: datetime) -> Decimal:
    return MonthlyBudget.objects.get(month=month_of(moment)).reserved


def test_cancelling_a_job_gives_each_month_back_what_it_reserved_there_and_the_month_cap_holds() -> None:
    set_monthly_cap(month=OCT.date(), cap=D("1000"), actor=SYSTEM)
    set_monthly_cap(month=NOV.date(), cap=D("1000"), actor=SYSTEM)
    a = JobFactory(state="published")
    reserve_budget(job=a, amount=D("800"), key="a:publish", actor=SYSTEM, now=OCT)
    reserve_budget(job=a, amount=D("1"), key="a:bonus", actor=SYSTEM, now=NOV)
    b = JobFactory(state="published")
    reserve_budget(job=b, amount=D("900"), key="b:publish", actor=SYSTEM, now=NOV)

    cancel_job(job=a, actor=SYSTEM, reason="stop")

    assert _counter(OCT) == 0  # October's 800 went back to October
    assert _counter(NOV) == D("900")  # November still holds b's reservation
    c = JobFactory(state="published")
    with pytest.raises(BudgetExceeded):
        reserve_budget(job=c, amount=D("900"), key="c:publish", actor=SYSTEM, now=NOV)
    assert _counter(NOV) == D("900")


def test_a_partial_release_comes_from_the_oldest_month_first_one_row_per_month() -> None:
    set_monthly_cap(month=OCT.date(), cap=D("1000"), actor=SYSTEM)
    set_monthly_cap(month=NOV.date(), cap=D("1000"), actor=SYSTEM)
    job = JobFactory(state="published")
    reserve_budget(job=job, amount=D("800"), key="publish", actor=SYSTEM, now=OCT)
    reserve_budget(job=job, amount=D("100"), key="more", actor=SYSTEM, now=NOV)

    released = release_budget(job=job, amount=D("850"), key="rel", actor=SYSTEM, now=NOV)

    assert released == D("850")  # both months' rows, not only the first one's 800
    releases = list(BudgetReservation.objects.filter(amount__lt=0).values_list("key", "month", "amount"))
    assert releases == [("rel", month_of(OCT), D("-800")), ("rel@2026-11", month_of(NOV), D("-50"))]
    assert (_counter(OCT), _counter(NOV)) == (0, D("50"))
    job.refresh_from_db()
    assert job.budget_reserved == D("50")
    events = AuditEvent.objects.filter(action="budget.released").order_by("id")
    assert [(e.after["month"], D(e.after["amount"])) for e in events] == [("2026-10-01", 800), ("2026-11-01", 50)]

    # The same key again releases nothing more.
    assert release_budget(job=job, amount=D("850"), key="rel", actor=SYSTEM, now=NOV) == D("850")
    assert (_counter(OCT), _counter(NOV)) == (0, D("50"))
    # The rest comes from November, the only month still held.
    release_budget(job=job, amount=D("50"), key="rel2", actor=SYSTEM, now=NOV)
    assert (_counter(OCT), _counter(NOV)) == (0, 0)
    assert Job.objects.get(pk=job.pk).budget_reserved == 0


def test_a_release_within_one_month_writes_one_row_as_before() -> None:
    set_monthly_cap(month=NOV.date(), cap=D("1000"), actor=SYSTEM)
    job = JobFactory(state="published")
    reserve_budget(job=job, amount=D("10"), key="publish", actor=SYSTEM, now=NOV)
    reserve_budget(job=job, amount=D("5"), key="more", actor=SYSTEM, now=NOV)

    release_budget(job=job, amount=D("12"), key="rel", actor=SYSTEM, now=NOV)

    assert list(BudgetReservation.objects.filter(amount__lt=0).values_list("key", "amount")) == [("rel", D("-12"))]
    assert _counter(NOV) == D("3")
