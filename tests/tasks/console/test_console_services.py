"""Instruction versions, job templates, more answers, the dashboard figures, Markdown and the paginator."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tasks.console.charts import bar_chart, heat_map
from tasks.console.markdown import render_markdown
from tasks.dashboard import get_job_dashboard
from tasks.models import Assignment, ConsensusLabel, Hit, Item, Job, JobInstructions, JobState
from tasks.services.errors import ServiceError
from tasks.services.instructions import ConfirmationRequired, update_instructions
from tasks.services.job_templates import clone_job
from tasks.services.more_answers import request_more_answers
from tasks.services.pool import assign_next_hit
from tests.factories import ItemFactory, JobFactory
from tests.tasks.exports.conftest import work
from workforce.audit import Actor
from workforce.models import AuditEvent
from workforce.paginator import EstimatedCountPaginator

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("tests")


def test_instructions_are_versioned_and_assignments_record_the_version_seen(
    make_published_job: Any, make_worker: Any
) -> None:
    job = make_published_job(items=3, redundancy=2)
    update_instructions(job=job, text="v1 text", actor=SYSTEM, confirmed=True)
    first = assign_next_hit(job=job, worker=make_worker())
    update_instructions(job=job, text="v2 text", actor=SYSTEM, confirmed=True)
    job.refresh_from_db()
    second = assign_next_hit(job=job, worker=make_worker())
    assert Assignment.objects.get(pk=first.pk).instructions_version == 1
    assert Assignment.objects.get(pk=second.pk).instructions_version == 2
    assert list(JobInstructions.objects.filter(job=job).order_by("version").values_list("text", flat=True)) == [
        "v1 text",
        "v2 text",
    ]
    assert (job.instructions, job.instructions_version) == ("v2 text", 2)
    assert AuditEvent.objects.filter(action="job.instructions_versioned").count() == 2


def test_a_running_jobs_instructions_change_only_when_confirmed(make_published_job: Any) -> None:
    job = make_published_job(items=1)
    with pytest.raises(ConfirmationRequired):
        update_instructions(job=job, text="new", actor=SYSTEM)
    assert not JobInstructions.objects.filter(job=job).exists()
    draft = JobFactory()
    update_instructions(job=draft, text="draft text", actor=SYSTEM)  # drafts need no confirmation
    with pytest.raises(ServiceError, match="unchanged"):
        update_instructions(job=draft, text="draft text", actor=SYSTEM)


def test_clone_copies_configuration_but_not_items_or_state(make_published_job: Any) -> None:
    job = make_published_job(items=2, reward=Decimal("0.12"), gold_rate=0.1, instructions="Be careful.")
    clone = clone_job(job=job, actor=SYSTEM)
    assert (clone.name, clone.state, clone.items.count()) == (f"{job.name} (copy)", JobState.DRAFT, 0)
    assert (clone.reward, clone.gold_rate, clone.labels, clone.task_kind) == (
        Decimal("0.1200"),
        0.1,
        job.labels,
        job.task_kind,
    )
    assert clone.instructions_version == 1
    assert AuditEvent.objects.get(action="job.cloned").after["from_job"] == job.pk


def test_more_answers_reopens_hits_and_a_completed_job(labeled_job: Job) -> None:
    assert Job.objects.get(pk=labeled_job.pk).state == JobState.COMPLETED
    changed = request_more_answers(job=labeled_job, actor=SYSTEM, extra=2)
    assert changed.hits == 4
    assert set(Hit.objects.filter(job=labeled_job).values_list("assignments_wanted", "state")) == {(5, "open")}
    assert Job.objects.get(pk=labeled_job.pk).state == JobState.PUBLISHED


def test_more_answers_only_where_consensus_is_unsure(labeled_job: Job) -> None:
    unsure = ConsensusLabel.objects.filter(job=labeled_job).order_by("item_id").first()
    ConsensusLabel.objects.filter(job=labeled_job).update(confidence=0.95)
    ConsensusLabel.objects.filter(pk=unsure.pk).update(confidence=0.5)
    assert request_more_answers(job=labeled_job, actor=SYSTEM, below_confidence=0.9).hits == 1
    reopened = Hit.objects.get(job=labeled_job, state="open")
    assert list(reopened.items.values_list("pk", flat=True)) == [unsure.item_id]


def test_more_answers_refuses_drafts_and_silly_counts() -> None:
    job = JobFactory()
    with pytest.raises(ServiceError, match="running or completed"):
        request_more_answers(job=job, actor=SYSTEM)
    with pytest.raises(ServiceError, match="between 1 and 10"):
        request_more_answers(job=job, actor=SYSTEM, extra=0)


def test_dashboard_figures(labeled_job: Job, make_worker: Any) -> None:
    gold = ItemFactory(job=labeled_job, is_gold=True, gold_answer="neg")
    Item.objects.filter(pk=gold.pk).update(is_gold=True)
    d = get_job_dashboard(labeled_job, use_cache=False)
    assert (d.progress.answers_submitted, d.progress.answers_wanted) == (12, 12)
    assert (d.labeled, d.confident) == (4, 0)  # 2 of 3 votes: confidence 0.67
    assert d.label_distribution == [("pos", 4)]
    assert sum(n for _, n in d.throughput) == 12
    assert d.workers == 3 and d.mean_agreement == pytest.approx(2 / 3)
    assert d.cost.total == Decimal("0.8400") and d.forecast == Decimal("0.84")
    assert d.confusion == [[0, 0, 0], [0, 0, 0], [0, 0, 0]]  # the gold item has no answers yet


def test_confusion_matrix_compares_the_crowd_majority_with_gold(make_published_job: Any, make_worker: Any) -> None:
    job = make_published_job(items=3, redundancy=3)
    items = list(job.items.order_by("id"))
    crowd = {items[0].external_id: "pos", items[1].external_id: "pos", items[2].external_id: "neg"}
    work(job, [make_worker() for _ in range(3)], lambda n, ext: crowd[ext])
    # The items turn out to be gold questions (as promoting consensus to gold does).
    for item, answer in zip(items, ("pos", "neg", "neg"), strict=True):
        Item.objects.filter(pk=item.pk).update(is_gold=True, gold_answer=answer)
    d = get_job_dashboard(job, use_cache=False)
    assert d.confusion_labels == ["pos", "neg", "neutral"]
    assert d.confusion == [[1, 0, 0], [1, 1, 0], [0, 0, 0]]  # rows gold, columns crowd


def test_markdown_escapes_html_and_unsafe_links() -> None:
    html = str(render_markdown("**bold** <script>x()</script> [a](javascript:alert(1)) [b](https://ok.example/)"))
    assert "<strong>bold</strong>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'href="#"' in html and 'href="https://ok.example/"' in html


def test_charts_are_svg_with_escaped_labels() -> None:
    chart = str(bar_chart([1, 3], ["<b>", "x"], title="t"))
    assert chart.startswith("<svg") and "&lt;b&gt;" in chart and "<b>" not in chart
    heat = str(heat_map([[2, 0], [1, 5]], ["a", "b"], title="h"))
    assert heat.count("<rect") == 4 and ">5</text>" in heat


def test_paginator_counts_exactly_on_small_lists() -> None:
    job = JobFactory()
    ItemFactory.create_batch(3, job=job)
    assert EstimatedCountPaginator(Item.objects.filter(job=job).order_by("id"), 2).count == 3


@pytest.mark.postgres
def test_paginator_takes_the_planner_estimate_on_big_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.conftest import is_postgres

    if not is_postgres():
        pytest.skip("needs PostgreSQL (EXPLAIN estimates)")
    from workforce import paginator

    job = JobFactory()
    ItemFactory.create_batch(30, job=job)
    monkeypatch.setattr(paginator, "EXACT_BELOW", 1)
    estimate = paginator.estimate_count(Item.objects.filter(job=job))
    assert estimate is not None and estimate >= 1
    assert EstimatedCountPaginator(Item.objects.filter(job=job).order_by("id"), 10).count == estimate
