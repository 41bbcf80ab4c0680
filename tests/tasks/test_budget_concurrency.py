"""Parallel publishers and extra-answer requests against real PostgreSQL never end above a cap."""

from __future__ import annotations

import threading
from collections import Counter
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connections
from django.db.models import Sum
from django.utils import timezone

from tasks.models import BudgetReservation, Hit, Job, JobState, MonthlyBudget
from tasks.services.budget import BudgetExceeded, month_of, set_monthly_cap
from tasks.services.extra_answers import request_more_answers
from tasks.services.publishing import publish_job
from tests.conftest import SYSTEM
from tests.factories import ItemFactory, JobFactory

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs PostgreSQL; set DATABASE_URL=postgres://..."),
]

D = Decimal
PUBLISHERS = 10
REQUESTERS = 10


@pytest.mark.django_db(transaction=True)
def test_parallel_publishers_and_extra_answer_requests_never_exceed_the_caps(make_published_job):
    month = month_of(timezone.now())
    busy = make_published_job(items=1, redundancy=1, reward=D("0.05"), budget_cap=D("0.25"))  # 0.05 reserved
    hit = Hit.objects.get(job=busy)
    set_monthly_cap(month=month, cap=D("1.00"), actor=SYSTEM)
    MonthlyBudget.objects.filter(month=month).update(reserved=D("0.05"))  # the busy job's publish, made before
    drafts = []
    for _ in range(PUBLISHERS):
        job = JobFactory(redundancy=3, reward=D("0.05"))  # 2 items x 3 answers x 0.05 = 0.30
        ItemFactory.create_batch(2, job=job)
        drafts.append(job)
    barrier = threading.Barrier(PUBLISHERS + REQUESTERS)
    outcomes: Counter[str] = Counter()
    errors: list[BaseException] = []

    def publisher(job: Job) -> None:
        try:
            barrier.wait()
            publish_job(job=job, actor=SYSTEM)
            outcomes["published"] += 1
        except BudgetExceeded:
            outcomes["publish_refused"] += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    def requester() -> None:
        try:
            barrier.wait()
            for _ in range(3):
                if request_more_answers(job=busy, hit_ids=[hit.pk], extra=1, actor=SYSTEM):
                    outcomes["more"] += 1
        except BudgetExceeded:
            outcomes["more_refused"] += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=publisher, args=(job,)) for job in drafts]
    threads += [threading.Thread(target=requester) for _ in range(REQUESTERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors

    monthly = MonthlyBudget.objects.get(month=month)
    busy.refresh_from_db()
    assert monthly.reserved <= monthly.cap
    assert busy.budget_reserved <= busy.budget_cap
    assert outcomes["publish_refused"] > 0 and outcomes["more_refused"] > 0
    # The running sums are exactly the reservation rows, and the rows match the work that was opened.
    rows = BudgetReservation.objects.filter(month=month)
    assert monthly.reserved == D("0.05") + (rows.aggregate(s=Sum("amount"))["s"] - D("0.05"))
    assert busy.budget_reserved == rows.filter(job=busy).aggregate(s=Sum("amount"))["s"]
    assert Hit.objects.get(pk=hit.pk).assignments_wanted == 1 + outcomes["more"]
    assert busy.budget_reserved == D("0.05") * (1 + outcomes["more"])
    published = Job.objects.filter(pk__in=[j.pk for j in drafts], state=JobState.PUBLISHED).count()
    assert published == outcomes["published"]
    assert D("0.30") * published + busy.budget_reserved <= monthly.cap
    assert monthly.reserved == D("0.30") * published + busy.budget_reserved
