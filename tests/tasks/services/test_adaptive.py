"""Adaptive redundancy on a live internal-pool job: easy items stop early, disputed ones get more."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tasks.models import AdaptiveSkills, Answer, Hit, HitState, Item, Job, JobState, Prediction
from tasks.selectors_adaptive import get_adaptive_progress
from tasks.services.adaptive import allocate_adaptive_answers
from tasks.services.adaptive_state import items_state, load_skills, refit_adaptive_skills
from tasks.services.collection import submit_assignment
from tasks.services.errors import NoWorkAvailable, ServiceError
from tasks.services.jobs import configure_job
from tasks.services.pool import assign_next_hit
from tasks.services.predictions import import_predictions_from_text
from tasks.services.publishing import publish_job
from tests.factories import ItemFactory, JobFactory
from workforce.audit import Actor, seal_audit_events
from workforce.models import AuditEvent, Marketplace

pytestmark = pytest.mark.django_db
ADAPTIVE = {"labels": ["pos", "neg"], "adaptive_min_answers": 2, "adaptive_max_answers": 5, "adaptive_target": 0.8}


def _answer(item: Item, worker_index: int) -> str:
    """Easy items: everyone says pos. Disputed items: answers alternate pos, neg, pos, ..."""
    if item.external_id.startswith("easy"):
        return "pos"
    return "pos" if Answer.objects.filter(item=item).count() % 2 == 0 else "neg"


def _run_crowd(
    job: Job, workers: list[Any], answer: Callable[[Item, int], str] = _answer, on_commit: Any = None
) -> int:
    """Workers take Hits in turn until none is handed out in a full round; returns the submissions."""
    submitted = 0
    while True:
        progressed = False
        for index, worker in enumerate(workers):
            try:
                lease = assign_next_hit(job=job, worker=worker)
            except NoWorkAvailable:
                continue
            items = list(lease.hit.items.all())
            answers = {item.pk: answer(item, index) for item in items}
            if on_commit is None:
                submit_assignment(assignment=lease, worker=worker, answers=answers)
            else:
                with on_commit(execute=True):
                    submit_assignment(assignment=lease, worker=worker, answers=answers)
            submitted += 1
            progressed = True
        if not progressed:
            return submitted


def _answers_per_item(job: Job) -> dict[str, int]:
    return {item.external_id: Answer.objects.filter(item=item).count() for item in Item.objects.filter(job=job)}


def _publish(easy: int, hard: int, **fields: Any) -> Job:
    job = JobFactory(state=JobState.DRAFT, **{**ADAPTIVE, **fields})
    for n in range(easy):
        ItemFactory(job=job, external_id=f"easy-{n}")
    for n in range(hard):
        ItemFactory(job=job, external_id=f"hard-{n}")
    return publish_job(job=job, actor=Actor.system("test"))


def test_hits_of_an_adaptive_job_are_published_wanting_the_minimum():
    job = _publish(2, 1)
    assert set(Hit.objects.filter(job=job).values_list("assignments_wanted", flat=True)) == {2}


def test_easy_items_stop_at_the_minimum_and_disputed_items_get_more_up_to_the_maximum(make_worker):
    job = _publish(3, 2)
    _run_crowd(job, [make_worker() for _ in range(6)])
    counts = _answers_per_item(job)
    assert {k: v for k, v in counts.items() if k.startswith("easy")} == {"easy-0": 2, "easy-1": 2, "easy-2": 2}
    assert {k: v for k, v in counts.items() if k.startswith("hard")} == {"hard-0": 5, "hard-1": 5}
    assert set(Hit.objects.filter(job=job).values_list("state", flat=True)) == {HitState.COMPLETE}
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    # every extra answer was reserved first: 3 extras on each disputed item
    assert job.budget_reserved == Decimal("0.05") * (5 * 2 + 3 * 2)


def test_a_confident_model_that_agrees_with_the_first_answer_stops_an_item_at_one_answer(make_worker):
    job = _publish(2, 0, prelabel_model="m1", adaptive_target=0.8)
    agree, disagree = Item.objects.filter(job=job).order_by("external_id")
    now = timezone.now()
    Prediction.objects.create(job=job, item=agree, model_name="m1", value="pos", score=0.95, created_at=now)
    Prediction.objects.create(job=job, item=disagree, model_name="m1", value="neg", score=0.95, created_at=now)
    _run_crowd(job, [make_worker() for _ in range(6)])
    # the agreeing model counts as the second annotator; the disagreeing one is not counted
    assert Answer.objects.filter(item=agree).count() == 1
    assert Hit.objects.get(hit_items__item=agree).assignments_wanted == 1
    assert Answer.objects.filter(item=disagree).count() == 2


def test_budget_exhaustion_stops_extra_answers_and_is_audited_once(make_worker, django_capture_on_commit_callbacks):
    job = _publish(1, 2, budget_cap=Decimal("0.40"))  # 6 answers reserved at publish, room for 2 more
    assert job.budget_reserved == Decimal("0.30")
    _run_crowd(job, [make_worker() for _ in range(6)], on_commit=django_capture_on_commit_callbacks)
    job.refresh_from_db()
    counts = _answers_per_item(job)
    assert counts["easy-0"] == 2
    assert counts["hard-0"] + counts["hard-1"] == 4 + 2
    assert job.budget_reserved <= job.budget_cap
    seal_audit_events()
    events = AuditEvent.objects.filter(action="job.adaptive_budget_exhausted", object_id=str(job.pk))
    assert events.count() == 1


def test_ranked_allocation_gives_the_last_answer_to_the_item_that_gains_most(make_worker):
    job = _publish(0, 2, budget_cap=Decimal("0.25"))  # 4 answers reserved at publish, room for 1 more
    workers = [make_worker() for _ in range(2)]
    leaning, split = Item.objects.filter(job=job).order_by("external_id")

    def answer(item: Item, index: int) -> str:
        return "neg" if item == split and index == 1 else "pos"

    _run_crowd(job, workers, answer=answer)  # the hot path defers (the budget is short): nothing reopened
    assert set(Hit.objects.filter(job=job).values_list("state", flat=True)) == {HitState.COMPLETE}
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED
    assert allocate_adaptive_answers(job=job) == 1
    job.refresh_from_db()
    assert job.state == JobState.PUBLISHED  # reopened for the extra answer
    assert Hit.objects.get(hit_items__item=split).assignments_wanted == 3
    assert Hit.objects.get(hit_items__item=leaning).assignments_wanted == 2


def test_a_short_budget_pays_the_least_settled_item_before_a_nearly_settled_one(make_worker):
    # 4 answers reserved at publish, room for 2 more; each Hit could still take 3, so the budget is short
    job = _publish(0, 2, budget_cap=Decimal("0.30"), adaptive_target=0.999)
    workers = [make_worker() for _ in range(2)]
    leaning, split = Item.objects.filter(job=job).order_by("external_id")

    def answer(item: Item, index: int) -> str:
        return "neg" if item == split and index == 1 else "pos"

    _run_crowd(job, workers, answer=answer)
    state = items_state(job, [leaning.pk, split.pk], load_skills(job))
    assert state.wants.all()  # both are below the target, and the budget could pay one answer to each
    assert allocate_adaptive_answers(job=job) == 1
    assert Hit.objects.get(hit_items__item=split).assignments_wanted == 3
    assert Hit.objects.get(hit_items__item=leaning).assignments_wanted == 2
    job.refresh_from_db()
    assert job.budget_cap - job.budget_reserved == Decimal("0.05")  # kept for the next step
    # the progress card and the status API say which step the budget is serving
    step = get_adaptive_progress(job).budget_step  # type: ignore[union-attr]
    split_at, leaning_at = state.settled[1], state.settled[0]
    assert step is not None and split_at < step <= leaning_at


def test_a_short_budget_first_sweeps_every_hit_to_the_same_depth_whatever_its_answers(make_worker):
    """The replay's rule (tasks.aggregation.replay.first_depth): half of what the budget pays per Hit goes to
    every Hit before any is chosen by how settled it is, so the final fit sees a balanced sample."""
    # 4 answers reserved at publish and room for 8 more: 12 in all, so every Hit is swept to 0.5 x 12 / 2 = 3
    # answers; each could still take 8 more (maximum 10), so the budget is short.
    job = _publish(2, 0, budget_cap=Decimal("0.60"), adaptive_max_answers=10, adaptive_target=0.8)
    workers = [make_worker() for _ in range(3)]
    _run_crowd(job, workers)  # everyone agrees: both Hits are settled at the minimum
    state = items_state(job, list(Item.objects.filter(job=job).values_list("pk", flat=True)), load_skills(job))
    assert not state.wants.any()
    assert allocate_adaptive_answers(job=job) == 2  # swept anyway, one answer each
    assert set(Hit.objects.filter(job=job).values_list("assignments_wanted", flat=True)) == {3}
    _run_crowd(job, workers)
    assert allocate_adaptive_answers(job=job) == 0  # at the sweep's depth and settled: nothing more
    assert set(Hit.objects.filter(job=job).values_list("assignments_wanted", flat=True)) == {3}


def test_a_settled_hit_below_the_sweep_depth_asks_for_an_allocation_pass(
    make_worker, django_capture_on_commit_callbacks
):
    job = _publish(1, 0, budget_cap=Decimal("0.30"), adaptive_max_answers=10, adaptive_target=0.8)  # depth 3
    workers = [make_worker() for _ in range(4)]
    _run_crowd(job, workers, on_commit=django_capture_on_commit_callbacks)  # the pass runs on commit
    assert Hit.objects.get(job=job).assignments_wanted == 3
    assert Answer.objects.filter(job=job).count() == 3
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED and job.budget_reserved <= job.budget_cap


def test_a_pre_label_job_has_no_sweep_its_short_budget_goes_to_the_disputed_item(make_worker):
    """Its Hits start at one answer and the agreeing model settles them: the sweep would pay them all."""
    from tasks.models import Prediction

    job = _publish(4, 1, prelabel_model="m1", adaptive_target=0.8, budget_cap=Decimal("0.45"))
    for item in Item.objects.filter(job=job):
        value = "pos" if item.external_id.startswith("easy") else "neg"
        Prediction.objects.create(
            job=job, item=item, model_name="m1", value=value, score=0.95, created_at=job.created_at
        )
    _run_crowd(job, [make_worker() for _ in range(6)], answer=lambda item, index: "pos")
    assert allocate_adaptive_answers(job=job) == 1
    wanted = dict(Hit.objects.filter(job=job).values_list("hit_items__item__external_id", "assignments_wanted"))
    assert wanted == {"easy-0": 1, "easy-1": 1, "easy-2": 1, "easy-3": 1, "hard-0": 2}


def test_refit_caches_the_skills_of_every_worker(make_worker):
    job = _publish(3, 2)
    workers = [make_worker() for _ in range(6)]
    _run_crowd(job, workers)
    row = refit_adaptive_skills(job=job)
    assert row.answers_at_fit == Answer.objects.filter(job=job).count()
    assert len(row.log_conf) == len(row.workers) + 1
    assert set(row.workers) <= {w.pk for w in workers}


def test_a_non_adaptive_submit_runs_no_adaptive_query(make_published_job, make_worker):
    job = make_published_job(items=1, redundancy=1, labels=["pos", "neg"])
    worker = make_worker()
    lease = assign_next_hit(job=job, worker=worker)
    item = lease.hit.items.get()
    with CaptureQueriesContext(connection) as ctx:
        submit_assignment(assignment=lease, worker=worker, answers={item.pk: "pos"})
    # measured on the code before adaptive redundancy existed (the Hit completes, the job completes)
    assert len(ctx.captured_queries) == (
        NON_ADAPTIVE_QUERIES_PG if connection.vendor == "postgresql" else NON_ADAPTIVE_QUERIES
    )
    assert not any("tasks_adaptiveskills" in q["sql"] or "tasks_prediction" in q["sql"] for q in ctx.captured_queries)


NON_ADAPTIVE_QUERIES = 11
NON_ADAPTIVE_QUERIES_PG = 6


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"adaptive_min_answers": 3, "adaptive_max_answers": 2, "adaptive_target": 0.9}, "at least the minimum"),
        ({"adaptive_min_answers": 2, "adaptive_max_answers": 4, "adaptive_target": None}, "a minimum, a maximum"),
        (
            {
                "adaptive_min_answers": 2,
                "adaptive_max_answers": 12,
                "adaptive_target": 0.9,
                "marketplace": Marketplace.MTURK,
            },
            "never lets a HIT",
        ),
        (
            {
                "adaptive_min_answers": 2,
                "adaptive_max_answers": 4,
                "adaptive_target": 0.9,
                "marketplace": Marketplace.GROUNDTRUTH,
            },
            "Ground Truth",
        ),
    ],
)
def test_bad_adaptive_settings_are_refused(fields, message):
    job = JobFactory()
    for name, value in fields.items():
        setattr(job, name, value)
    with pytest.raises(ServiceError, match=message):
        configure_job(job=job, actor=Actor.system("test"))


def test_adaptive_settings_are_audited(make_published_job):
    job = make_published_job(items=1, **ADAPTIVE)
    job.adaptive_max_answers, job.adaptive_target = 7, 0.9
    configure_job(job=job, actor=Actor.system("test"))
    event = AuditEvent.objects.filter(action="job.configured", object_id=str(job.pk)).latest("id")
    assert event.before == {"adaptive_max_answers": 5, "adaptive_target": 0.8}
    assert event.after == {"adaptive_max_answers": 7, "adaptive_target": 0.9}


def test_the_hot_path_refits_the_skills_once_answers_have_grown(make_worker, django_capture_on_commit_callbacks):
    job = _publish(12, 0)  # 24 answers: the first refit comes at 20 (10% growth, at least 20 new answers)
    _run_crowd(job, [make_worker() for _ in range(4)], on_commit=django_capture_on_commit_callbacks)
    row = AdaptiveSkills.objects.get(job=job)
    assert 20 <= row.answers_at_fit < 24
    assert AuditEvent.objects.filter(action="job.adaptive_skills_refitted", object_id=str(job.pk)).count() == 1


def test_a_hit_the_model_disputes_is_handed_out_before_the_uncertain_ones(make_worker):
    job = _publish(3, 0, prelabel_model="m1", adaptive_target=0.8)  # Hits published wanting one answer
    sure, unsure, unsurer = Item.objects.filter(job=job).order_by("external_id")
    import_predictions_from_text(
        job=job,
        text=f"external_id,label,score\n{sure.external_id},pos,0.95\n{unsure.external_id},pos,0.4\n"
        f"{unsurer.external_id},pos,0.3\n",
        filename="p.csv",
        model_name="m1",
        actor=Actor.system("test"),
    )
    first = make_worker()
    served = []
    for value in ("pos", "pos", "neg"):  # least certain first; the confident model is contradicted last
        lease = assign_next_hit(job=job, worker=first)
        item = lease.hit.items.get()
        served.append(item)
        submit_assignment(assignment=lease, worker=first, answers={item.pk: value})
    assert served == [unsurer, unsure, sure]
    assert Hit.objects.filter(job=job, state=HitState.OPEN).count() == 3  # each wants a second answer
    assert assign_next_hit(job=job, worker=make_worker()).hit.items.get() == sure


def test_a_completed_hit_checks_the_refit_against_the_tallies_not_the_jobs_answers(make_worker):
    """The re-fit check runs whenever an adaptive Hit completes; it used to COUNT every answer of the job."""
    from tasks.services.adaptive import after_hit_completed

    job = _publish(30, 0)
    _run_crowd(job, [make_worker() for _ in range(2)])  # 60 answers; the easy items stop at the minimum
    refit_adaptive_skills(job=job)
    assert AdaptiveSkills.objects.get(job=job).submitted_at_fit == 60
    hit = Hit.objects.filter(job=job).first()
    with CaptureQueriesContext(connection) as queries:
        after_hit_completed(job=job, hit_id=hit.pk, now=timezone.now())
    counted = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and '"tasks_answer"' in q["sql"]]
    assert counted == []
    assert any('"tasks_jobtally"' in q["sql"] for q in queries)


def test_a_budgeted_hits_completion_reads_the_budget_room_from_the_tallies_not_the_jobs_hits(make_worker):
    """Whether the budget pays every extra answer is asked on every completed Hit; it used to SUM over all
    the job's Hits. The tallies give the same answer: maximum x Hits - answers wanted."""
    from tasks.services.adaptive import _budget_covers_every_extra, after_hit_completed

    job = _publish(3, 2, budget_cap=Decimal("0.80"))  # 10 answers reserved at publish (0.50), room for 6 more
    assert not _budget_covers_every_extra(job)  # the 5 Hits could take 3 more each: 15 answers, 0.75
    Job.objects.filter(pk=job.pk).update(budget_cap=Decimal("1.25"))
    assert _budget_covers_every_extra(Job.objects.get(pk=job.pk))  # 0.75 of room: exactly enough
    Job.objects.filter(pk=job.pk).update(budget_cap=Decimal("1.24"))
    assert not _budget_covers_every_extra(Job.objects.get(pk=job.pk))
    _run_crowd(job, [make_worker() for _ in range(2)])
    hit = Hit.objects.get(hit_items__item__external_id="hard-0")  # split 1-1: it wants another answer
    with CaptureQueriesContext(connection) as queries:
        after_hit_completed(job=job, hit_id=hit.pk, now=timezone.now())
    assert any('"tasks_jobtally"' in q["sql"] for q in queries)
    summed = [q["sql"] for q in queries if "SUM(" in q["sql"].upper() and 'FROM "tasks_hit"' in q["sql"]]
    assert summed == []
