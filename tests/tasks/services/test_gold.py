"""Hidden gold questions: import, hand-out at the job's rate, grading, scores and the block policy."""

from __future__ import annotations

import io
import math
import random
import re

import pytest
from django.test import Client

from tasks.models import (
    Answer,
    Assignment,
    AssignmentState,
    GoldGrade,
    Hit,
    HitState,
    Item,
    JobBlock,
    JobState,
    WorkerJobScore,
)
from tasks.selectors import get_job_progress
from tasks.services.collection import submit_assignment
from tasks.services.errors import ImportValidationError, NoWorkAvailable
from tasks.services.imports import import_items
from tasks.services.pool import assign_next_hit
from tasks.services.publishing import publish_job
from tests.factories import JobFactory
from workforce.models import AuditEvent
from workforce.scoring import DEPENDENCE_BLOCK_ODDS

pytestmark = pytest.mark.django_db

CSV = (
    "external_id,text,gold\n"
    + "".join(f"n{i},normal {i},\n" for i in range(6))
    + "g1,first question,pos\ng2,second question,neg\n"
)


def _gold_job(actor, **fields):
    job = JobFactory(**fields)
    import_items(job=job, stream=io.StringIO(CSV), filename="items.csv", actor=actor)
    return publish_job(job=job, actor=actor)


def _answer(lease, worker, label):
    item = lease.hit.items.get()
    return submit_assignment(assignment=lease, worker=worker, answers={item.pk: label})


def test_a_gold_column_marks_items_gold_and_never_stays_in_the_payload(actor):
    job = _gold_job(actor)
    gold = Item.objects.get(job=job, external_id="g1")
    assert gold.is_gold and gold.gold_answer == "pos"
    assert "gold" not in gold.payload
    normal = Item.objects.get(job=job, external_id="n0")
    assert not normal.is_gold and normal.gold_answer is None and "gold" not in normal.payload


def test_a_gold_label_outside_the_label_set_is_a_row_error(actor):
    job = JobFactory()
    with pytest.raises(ImportValidationError) as info:
        import_items(job=job, stream=io.StringIO("external_id,text,gold\na,x,maybe\n"), filename="i.csv", actor=actor)
    assert info.value.errors[0].line == 2 and "gold label" in info.value.errors[0].message


def test_gold_items_get_their_own_hits_which_progress_ignores(actor):
    job = _gold_job(actor, redundancy=2)
    gold_hits = Hit.objects.filter(job=job, is_gold=True)
    assert gold_hits.count() == 2
    assert all(h.items.get().is_gold for h in gold_hits)
    assert not Hit.objects.filter(job=job, is_gold=False, items__is_gold=True).exists()
    assert get_job_progress(job).answers_wanted == 6 * 2


def test_without_a_gold_rate_no_gold_is_handed_out(actor, make_worker):
    job = _gold_job(actor, gold_rate=0.0, redundancy=1)
    worker = make_worker()
    for _ in range(6):
        _answer(assign_next_hit(job=job, worker=worker), worker, "pos")
    assert not Assignment.objects.filter(worker=worker, hit__is_gold=True).exists()
    with pytest.raises(NoWorkAvailable):
        assign_next_hit(job=job, worker=worker)


def test_gold_comes_at_the_jobs_rate_each_gold_at_most_once_and_only_while_real_work_remains(actor, make_worker):
    job = _gold_job(actor, gold_rate=0.5, redundancy=1)
    worker = make_worker()
    rng = random.Random(3)
    handed = []
    while True:
        try:
            lease = assign_next_hit(job=job, worker=worker, rng=rng)
        except NoWorkAvailable:
            break
        handed.append(lease.hit.is_gold)
        _answer(lease, worker, "pos")
    assert handed.count(False) == 6
    assert handed.count(True) == 2  # both gold Hits, once each
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED  # gold Hits never hold a job open


def test_a_gold_answer_is_graded_and_scored(actor, make_worker):
    job = _gold_job(actor, gold_rate=1.0)
    worker = make_worker()
    first = assign_next_hit(job=job, worker=worker, rng=random.Random(0))
    assert first.hit.is_gold
    _answer(first, worker, "pos")
    grade = GoldGrade.objects.get(worker=worker)
    assert grade.score == (1.0 if grade.item.external_id == "g1" else 0.0)
    score = WorkerJobScore.objects.get(job=job, worker=worker)
    assert score.gold_answers == 1
    assert 0 < score.accuracy_low < score.accuracy < score.accuracy_high < 1  # 1 of 1 is not 100%


def test_the_block_policy_blocks_a_worker_who_misses_gold_and_returns_their_work(actor, make_worker):
    job = JobFactory(gold_rate=0.0, redundancy=1, block_below_accuracy=0.9, block_after_gold=2)
    rows = "".join(f"n{i},normal {i},\n" for i in range(4)) + "".join(f"g{i},gold {i},pos\n" for i in range(3))
    import_items(job=job, stream=io.StringIO("external_id,text,gold\n" + rows), filename="i.csv", actor=actor)
    job = publish_job(job=job, actor=actor)
    spammer = make_worker()
    normal = assign_next_hit(job=job, worker=spammer)
    _answer(normal, spammer, "neg")
    job.gold_rate = 1.0
    for given in range(1, 4):
        _answer(assign_next_hit(job=job, worker=spammer, rng=random.Random(1)), spammer, "neg")
        # Two wrong answers are 1 / (1 - kappa) = 1 / (1 - 0.85) times likelier each without care: 44:1.
        assert JobBlock.objects.filter(job=job, worker=spammer).exists() == (given == 3)
    block = JobBlock.objects.get(job=job, worker=spammer)
    assert block.evidence["gold_answers"] == 3 and block.evidence["threshold"] == 0.9
    event = AuditEvent.objects.get(action="worker.blocked_from_job")
    assert event.actor_label == "block policy" and event.after["returned_assignments"] == 1
    normal.refresh_from_db()
    assert normal.state == AssignmentState.RETURNED
    hit = Hit.objects.get(pk=normal.hit_id)
    assert (hit.state, hit.assignments_submitted, hit.slots_taken) == (HitState.OPEN, 0, 0)
    with pytest.raises(NoWorkAvailable):
        assign_next_hit(job=job, worker=spammer)
    job.gold_rate = 0.0
    assert assign_next_hit(job=job, worker=make_worker()).hit_id == normal.hit_id


def test_blocked_workers_answers_do_not_enter_consensus(actor, make_worker):
    from tasks.services.consensus import compute_consensus

    job = _gold_job(actor, gold_rate=0.0, redundancy=2)
    good, bad = make_worker(), make_worker()
    for _ in range(6):
        _answer(assign_next_hit(job=job, worker=good), good, "pos")
        _answer(assign_next_hit(job=job, worker=bad), bad, "neg")
    JobBlock.objects.create(job=job, worker=bad, reason="test", created_at=job.created_at)
    result = compute_consensus(job=job, actor=actor)
    assert result.answers == 6  # the good worker's only; no gold answers either
    assert set(job.consensus_labels.values_list("value", flat=True)) == {"pos"}
    assert Answer.objects.filter(job=job).count() == 12


def _page_skeleton(html: str) -> str:
    html = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "UUID", html)
    html = re.sub(r"answer-\d+", "answer-ID", html)
    html = re.sub(r'data-item="\d+"', 'data-item="ID"', html)
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "CSRF", html)
    html = re.sub(r'data-seconds-left="\d+"', "SECONDS", html)
    return re.sub(r"<blockquote[^>]*>.*?</blockquote>", "TEXT", html, flags=re.S)


def test_a_gold_task_looks_exactly_like_any_other_to_the_worker(actor, make_worker, monkeypatch):
    from tasks.services import pool

    # The submit view hands out the next task itself (with the pool's own random source): seeded here too,
    # so the run always sees a gold and an ordinary page before the work runs out.
    monkeypatch.setattr(pool, "_random", random.Random(7))
    job = _gold_job(actor, gold_rate=0.5, redundancy=3)
    worker = make_worker()
    client = Client()
    client.force_login(worker.user)
    pages = {}
    rng = random.Random(5)
    while len(pages) < 2:
        lease = assign_next_hit(job=job, worker=worker, rng=rng)
        html = client.get(f"/work/tasks/{lease.uuid}/").content.decode()
        data = client.post(
            f"/work/tasks/{lease.uuid}/submit/",
            {"answer-1": "neutral"},
            HTTP_ACCEPT="application/json",
        ).content.decode()
        if '"next": null' in data:
            # The page's script goes to the work list here, which shows (and uses up) the "no more work" message;
            # without this visit the message would appear on whichever task page is loaded next.
            client.get("/work/")
        # (random CSRF tokens are taken out first: one could spell "gold" by chance)
        visible = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
        assert "gold" not in visible.lower() and "gold" not in data.lower()
        pages.setdefault(lease.hit.is_gold, _page_skeleton(html))
    assert pages[True] == pages[False]


def test_an_undecided_worker_gets_gold_at_the_boosted_rate_until_the_boost_is_spent(actor, make_worker):
    job = _gold_job(
        actor, gold_rate=0.0, redundancy=1, block_below_accuracy=0.6, gold_boost_rate=1.0, gold_boost_until=1
    )
    worker = make_worker()
    rng = random.Random(0)
    first = assign_next_hit(job=job, worker=worker, rng=rng)
    assert first.hit.is_gold  # undecided, no gold answers yet: boosted
    _answer(first, worker, "neutral")
    handed = []
    for _ in range(6):
        lease = assign_next_hit(job=job, worker=worker, rng=rng)
        handed.append(lease.hit.is_gold)
        _answer(lease, worker, "pos")
    assert handed == [False] * 6  # boost spent after one gold answer, and the job's own rate is 0


def test_without_a_block_floor_the_boost_never_ends_early_and_off_means_the_jobs_rate(actor, make_worker):
    job = _gold_job(actor, gold_rate=0.0, redundancy=1, gold_boost_rate=1.0, gold_boost_until=0)
    worker = make_worker()
    lease = assign_next_hit(job=job, worker=worker, rng=random.Random(0))
    assert not lease.hit.is_gold


def test_the_sequential_test_blocks_a_worker_at_chance_with_its_evidence(actor, make_worker):
    job = JobFactory(
        gold_rate=0.5,
        redundancy=1,
        block_below_accuracy=0.6,
        block_after_gold=2,
        gold_boost_rate=1.0,
        gold_boost_until=10,
    )
    rows = "".join(f"g{i},gold {i},pos\n" for i in range(12))
    normal = "".join(f"n{i},normal {i},\n" for i in range(12))
    import_items(job=job, stream=io.StringIO("external_id,text,gold\n" + normal + rows), filename="i.csv", actor=actor)
    job = publish_job(job=job, actor=actor)
    spammer = make_worker()
    rng = random.Random(2)
    given = tasks = 0
    while not JobBlock.objects.filter(job=job, worker=spammer).exists() and tasks < 24:
        lease = assign_next_hit(job=job, worker=spammer, rng=rng)
        if tasks < 5:
            assert lease.hit.is_gold  # undecided workers get only gold at a boost rate of 1
        _answer(lease, spammer, "neg")
        given += lease.hit.is_gold
        tasks += 1
    block = JobBlock.objects.get(job=job, worker=spammer)
    assert block.evidence["gold_answers"] == given and block.evidence["gold_right"] == 0
    # Chance of matching the gold answers from the worker's own label mix (all "neg", add-one smoothed).
    assert block.evidence["gold_chance_right"] == round(given / (tasks + len(job.labels)), 4)
    assert (
        block.evidence["log_likelihood_ratio"]
        >= block.evidence["block_at"]
        == round(math.log(DEPENDENCE_BLOCK_ODDS), 4)
    )
    event = AuditEvent.objects.get(action="worker.blocked_from_job")
    assert event.after["evidence"]["log_likelihood_ratio"] == block.evidence["log_likelihood_ratio"]


def test_confident_consensus_labels_can_be_promoted_to_gold(actor, make_worker):
    from tasks.models import ConsensusLabel
    from tasks.services.consensus import compute_consensus
    from tasks.services.errors import ServiceError
    from tasks.services.gold import promote_consensus_to_gold

    job = _gold_job(actor, gold_rate=0.0, redundancy=3)
    workers = [make_worker() for _ in range(3)]
    for n, worker in enumerate(workers):
        for _ in range(6):
            lease = assign_next_hit(job=job, worker=worker)
            item = lease.hit.items.get()
            label = "neg" if (n == 2 and item.external_id == "n0") else "pos"
            _answer(lease, worker, label)
    compute_consensus(job=job, actor=actor, method="mv")
    shaky = ConsensusLabel.objects.get(item__external_id="n0")  # 2 of 3 agree
    sure = ConsensusLabel.objects.get(item__external_id="n1")  # 3 of 3 agree
    assert shaky.confidence < 0.9 <= sure.confidence
    assert promote_consensus_to_gold(job=job, item_ids=[shaky.item_id, sure.item_id], actor=actor) == 1
    promoted = Item.objects.get(pk=sure.item_id)
    assert promoted.is_gold and promoted.gold_answer == "pos"
    assert not Item.objects.get(pk=shaky.item_id).is_gold
    gold_hit = Hit.objects.get(job=job, is_gold=True, items=promoted)
    assert gold_hit.state == HitState.OPEN
    assert AuditEvent.objects.get(action="gold.promoted").after["items"] == [sure.item_id]
    with pytest.raises(ServiceError, match="gold already"):
        promote_consensus_to_gold(job=job, item_ids=[sure.item_id], actor=actor)


def test_training_mode_shows_the_right_answer_after_a_missed_gold_question_only(actor, make_worker):
    job = _gold_job(actor, gold_rate=1.0, training_mode=True, instructions="Sarcasm counts as negative.")
    worker = make_worker()
    client = Client()
    client.force_login(worker.user)
    rng = random.Random(0)
    lease = assign_next_hit(job=job, worker=worker, rng=rng)
    gold_item = lease.hit.items.get()
    wrong = "neg" if gold_item.gold_answer == "pos" else "pos"
    body = client.post(f"/work/tasks/{lease.uuid}/submit/", {"answer-1": wrong}, HTTP_ACCEPT="application/json").json()
    assert body["feedback"]["missed"] == [{"item": 1, "your_answer": wrong, "correct": gold_item.gold_answer}]
    assert body["feedback"]["instructions"] == "Sarcasm counts as negative."
    # a right answer, or any job not in training mode, gets no feedback
    nxt = Assignment.objects.get(uuid=body["next"]["uuid"])
    item = nxt.hit.items.get()
    right = item.gold_answer if item.is_gold else "pos"
    body = client.post(f"/work/tasks/{nxt.uuid}/submit/", {"answer-1": right}, HTTP_ACCEPT="application/json").json()
    assert "feedback" not in body


def test_speed_scores_flag_a_worker_who_answers_faster_than_anyone_can_read(actor, make_worker):
    from datetime import timedelta

    from tasks.services.quality import refresh_speed_scores

    job = _gold_job(actor, gold_rate=0.0, redundancy=2)
    careful, clicker = make_worker(), make_worker()
    for worker, seconds in ((careful, 20), (clicker, 1)):
        for _ in range(6):
            lease = assign_next_hit(job=job, worker=worker)
            _answer(lease, worker, "pos")
            Assignment.objects.filter(pk=lease.pk).update(submitted_at=lease.accepted_at + timedelta(seconds=seconds))
    assert refresh_speed_scores(job=job) == 2
    scores = {s.worker_id: s for s in WorkerJobScore.objects.filter(job=job)}
    assert scores[careful.pk].median_seconds == 20 and scores[careful.pk].fast_share == 0
    assert scores[clicker.pk].median_seconds == 1 and scores[clicker.pk].fast_share == 1


def test_a_worker_confidently_above_the_bar_is_granted_the_trusted_qualification(actor, make_worker):
    from datetime import timedelta

    from qualification.models import Grant
    from qualification.services import create_test
    from qualification.specs import QuestionSpec

    trusted = create_test(
        actor=actor,
        name="Trusted labeler",
        questions=[QuestionSpec(identifier="q1", prompt="?", payload={"text": "x"}, accepted=("pos",))],
        labels=["pos", "neg"],
        pass_score=80,
        time_limit=timedelta(minutes=5),
        retry_delay=timedelta(hours=1),
        max_attempts=1,
    )
    job = JobFactory(gold_rate=1.0, redundancy=1, block_after_gold=3, trusted_test=trusted, trusted_min_accuracy=0.3)
    rows = "".join(f"g{i},question {i},pos\n" for i in range(5)) + "n0,normal,\n"
    import_items(job=job, stream=io.StringIO("external_id,text,gold\n" + rows), filename="i.csv", actor=actor)
    job = publish_job(job=job, actor=actor)
    good, sloppy = make_worker(), make_worker()
    rng = random.Random(2)
    for n in range(3):
        _answer(assign_next_hit(job=job, worker=good, rng=rng), good, "pos")
        _answer(assign_next_hit(job=job, worker=sloppy, rng=rng), sloppy, "pos" if n == 0 else "neg")
        granted = Grant.objects.filter(worker=good, family=trusted).exists()
        assert granted == (n == 2)  # only once the minimum of 3 gold answers is reached
    grant = Grant.objects.get(worker=good, family=trusted)
    assert grant.score > 50 and grant.attempt is None
    assert not Grant.objects.filter(worker=sloppy).exists()
    assert AuditEvent.objects.filter(action="qualification.granted", actor_label="trust policy").count() == 1
