"""The worker's own scores page and the earnings on the admin scorecards."""

from __future__ import annotations

import io
import random
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tasks.models import CostKind, HitItem, Item, Job, WorkerJobScore
from tasks.services.collection import submit_assignment
from tasks.services.imports import import_items
from tasks.services.ledger import record_cost, reverse_cost
from tasks.services.pool import assign_next_hit
from tasks.services.publishing import publish_job
from tasks.worker_scores import SCORE_BLOCK, list_worker_scorecards
from tests.factories import JobFactory, UserFactory
from workforce.models import Worker

pytestmark = pytest.mark.django_db

GOLD_ANSWER = "zebra"


def _job(actor: Any, *, name: str, normal: int = 30, gold: int = 30) -> Job:
    job = JobFactory(name=name, labels=["yak", GOLD_ANSWER], redundancy=1, gold_rate=0.5)
    rows = "".join(f"plain-{i},plain text {i},\n" for i in range(normal))
    rows += "".join(f"secret-gold-{i},gold text {i},{GOLD_ANSWER}\n" for i in range(gold))
    import_items(job=job, stream=io.StringIO("external_id,text,gold\n" + rows), filename="i.csv", actor=actor)
    return publish_job(job=job, actor=actor)


def _submit(job: Job, worker: Worker, count: int, rng: random.Random, label: str = "yak") -> list[Any]:
    done = []
    for _ in range(count):
        lease = assign_next_hit(job=job, worker=worker, rng=rng)
        items = HitItem.objects.filter(hit_id=lease.hit_id).values_list("item_id", flat=True)
        done.append(submit_assignment(assignment=lease, worker=worker, answers={i: label for i in items}))
    return done


def _client(worker: Worker) -> Client:
    client = Client()
    client.force_login(worker.user)
    return client


def test_the_job_list_links_to_the_scores_page(make_worker: Any) -> None:
    page = _client(make_worker()).get(reverse("work-list")).content.decode()
    assert reverse("my-scores") in page


def test_the_page_is_for_workers_only(make_worker: Any) -> None:
    client = Client()
    client.force_login(UserFactory(username="boss", is_staff=True))
    assert client.get(reverse("my-scores")).status_code == 403
    assert Client().get(reverse("my-scores")).status_code == 302  # to the login page


def test_gold_figures_and_earnings_move_only_once_per_block_of_submissions(actor: Any, make_worker: Any) -> None:
    job = _job(actor, name="Blocked figures")
    worker = make_worker()
    rng = random.Random(3)
    done = _submit(job, worker, SCORE_BLOCK - 1, rng)
    for assignment in done:
        record_cost(
            job=job,
            kind=CostKind.INTERNAL_PAY,
            amount=Decimal("0.05"),
            idempotency_key=f"pay-{assignment.pk}",
            marketplace="internal",
            assignment=assignment,
            worker=worker,
        )
    (card,) = list_worker_scorecards(worker)
    assert card.submitted == SCORE_BLOCK - 1 and card.counted == 0
    page = _client(worker).get(reverse("my-scores")).content.decode()
    assert f"updated after every {SCORE_BLOCK} tasks you submit" in page and "Node" not in page
    assert card.gold_answers == 0 and card.accuracy is None and card.earnings == 0
    assert card.next_refresh_in == 1
    last = _submit(job, worker, 1, rng)[0]
    record_cost(
        job=job,
        kind=CostKind.INTERNAL_PAY,
        amount=Decimal("0.05"),
        idempotency_key=f"pay-{last.pk}",
        marketplace="internal",
        assignment=last,
        worker=worker,
    )
    (card,) = list_worker_scorecards(worker)
    gold_in_block = Item.objects.filter(job=job, is_gold=True, answers__worker=worker).count()
    assert 0 < gold_in_block < SCORE_BLOCK  # the block mixes gold and ordinary tasks
    assert card.counted == SCORE_BLOCK and card.gold_answers == gold_in_block
    assert card.accuracy is not None and card.accuracy_low < card.accuracy < card.accuracy_high
    assert card.earnings == Decimal("0.05") * SCORE_BLOCK
    # One more task, gold or not, changes none of the gold figures nor the earnings.
    before = (card.gold_answers, card.accuracy, card.earnings)
    extra = _submit(job, worker, 1, rng)[0]
    record_cost(
        job=job,
        kind=CostKind.INTERNAL_PAY,
        amount=Decimal("0.05"),
        idempotency_key=f"pay-{extra.pk}",
        marketplace="internal",
        assignment=extra,
        worker=worker,
    )
    (card,) = list_worker_scorecards(worker)
    assert (card.gold_answers, card.accuracy, card.earnings) == before and card.submitted == SCORE_BLOCK + 1


def test_earnings_count_pay_and_bonuses_less_reversals_but_not_fees(actor: Any, make_worker: Any) -> None:
    job = _job(actor, name="Paid job", normal=25, gold=0)
    worker = make_worker()
    done = _submit(job, worker, SCORE_BLOCK, random.Random(1))
    common = {"job": job, "marketplace": "internal", "worker": worker}
    pay, _ = record_cost(
        kind=CostKind.REWARD, amount=Decimal("1.00"), idempotency_key="r", assignment=done[0], **common
    )
    record_cost(kind=CostKind.BONUS, amount=Decimal("0.50"), idempotency_key="b", **common)
    record_cost(
        kind=CostKind.MARKETPLACE_FEE, amount=Decimal("0.20"), idempotency_key="f", assignment=done[1], **common
    )
    reverse_cost(entry=pay, idempotency_key="rr")
    record_cost(kind=CostKind.REWARD, amount=Decimal("0.25"), idempotency_key="r2", assignment=done[2], **common)
    (card,) = list_worker_scorecards(worker)
    assert card.earnings == Decimal("0.75")


def test_the_page_shows_what_waits_for_review_before_it_is_paid(actor: Any, make_worker: Any) -> None:
    job = _job(actor, name="Reviewed later", normal=25, gold=0)
    Job.objects.filter(pk=job.pk).update(reward=Decimal("0.07"))
    worker = make_worker()
    _submit(Job.objects.get(pk=job.pk), worker, 3, random.Random(1))
    (card,) = list_worker_scorecards(worker)
    assert (card.earnings, card.awaiting_review, card.awaiting_pay) == (Decimal("0"), 3, Decimal("0.21"))
    page = _client(worker).get(reverse("my-scores")).content.decode()
    assert "3 tasks waiting for review: up to 0.21 USD more once approved." in page


def test_the_page_shows_only_the_workers_own_jobs_and_no_gold_item_marker_or_answer(
    actor: Any, make_worker: Any
) -> None:
    mine, theirs = _job(actor, name="My job"), _job(actor, name="Their job")
    me, other = make_worker(), make_worker()
    rng = random.Random(5)
    _submit(mine, me, SCORE_BLOCK + 3, rng, label=GOLD_ANSWER)
    _submit(theirs, other, SCORE_BLOCK, rng)
    record_cost(
        job=theirs,
        kind=CostKind.BONUS,
        amount=Decimal("9.99"),
        idempotency_key="theirs",
        marketplace="internal",
        worker=other,
    )
    WorkerJobScore.objects.filter(job=mine, worker=me).update(agreement=0.9, answers=11, median_seconds=7.0)
    response = _client(me).get(reverse("my-scores"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "My job" in page and "Their job" not in page and "9.99" not in page
    assert "90%" in page  # agreement
    assert "from " in page and "check answers" in page  # the gold figures are shown, in aggregate
    lowered = page.lower()
    assert "gold" not in lowered and "secret" not in lowered and GOLD_ANSWER not in lowered
    for pk, external_id in Item.objects.filter(job=mine).values_list("pk", "external_id"):
        assert external_id not in page
        assert f'item={pk}"' not in page and f"/{pk}/" not in page


def test_admin_scorecards_show_earnings_and_blocks_without_a_query_per_row(
    actor: Any, make_worker: Any, superuser: Any
) -> None:
    job = _job(actor, name="Scored", normal=10, gold=0)
    workers = [make_worker() for _ in range(3)]
    for n, worker in enumerate(workers):
        WorkerJobScore.objects.create(job=job, worker=worker, answers=n, updated_at=job.created_at)
        record_cost(
            job=job,
            kind=CostKind.INTERNAL_PAY,
            amount=Decimal("1.25") * (n + 1),
            idempotency_key=f"p{n}",
            marketplace="internal",
            worker=worker,
        )
    client = Client()
    client.force_login(superuser)
    url = reverse("admin:tasks_workerjobscore_changelist")
    with CaptureQueriesContext(connection) as three:
        page = client.get(url).content.decode()
    assert "1.25 USD" in page and "2.50 USD" in page and "3.75 USD" in page
    WorkerJobScore.objects.create(job=job, worker=make_worker(), updated_at=job.created_at)
    with CaptureQueriesContext(connection) as four:
        page = client.get(url).content.decode()
    assert "0.00 USD" in page
    assert len(four.captured_queries) == len(three.captured_queries)
