"""Quality policies: the missed-gold action (off / flag / reject), the minimal review service, and the
block decision's peer-agreement evidence."""

from __future__ import annotations

import io
import math
import random

import pytest

from tasks.models import (
    Answer,
    AssignmentFlag,
    AssignmentState,
    GoldGrade,
    HitItem,
    JobBlock,
)
from tasks.quality_selectors import get_dependence_evidence
from tasks.services.collection import submit_assignment
from tasks.services.errors import InvalidTransition
from tasks.services.imports import import_items
from tasks.services.pool import assign_next_hit
from tasks.services.publishing import publish_job
from tasks.services.review import reject_assignment
from tests.factories import JobFactory
from workforce.audit import seal_audit_events
from workforce.models import AuditEvent
from workforce.scoring import DEPENDENCE_BLOCK_ODDS

pytestmark = pytest.mark.django_db

LABELS = ["a", "b", "c", "d"]


def _job(actor, *, normal=0, gold=(), **fields):
    job = JobFactory(labels=LABELS, **fields)
    rows = "".join(f"n{i},normal {i},\n" for i in range(normal))
    rows += "".join(f"g{i},gold {i},{label}\n" for i, label in enumerate(gold))
    import_items(job=job, stream=io.StringIO("external_id,text,gold\n" + rows), filename="i.csv", actor=actor)
    return publish_job(job=job, actor=actor)


def _work(job, worker, answer, rng):
    """Lease the worker's next task and answer every item with ``answer(item)``; return the assignment."""
    lease = assign_next_hit(job=job, worker=worker, rng=rng)
    items = list(HitItem.objects.filter(hit_id=lease.hit_id).select_related("item"))
    return submit_assignment(
        assignment=lease, worker=worker, answers={hi.item_id: answer(hi.item) for hi in items}
    ), lease


@pytest.mark.parametrize("action", ["off", "flag", "reject"])
def test_an_assignment_whose_gold_answers_are_all_wrong_follows_the_jobs_action(actor, make_worker, action):
    job = _job(
        actor, normal=1, gold=["a"], gold_rate=0.5, gold_boost_rate=1.0, gold_boost_until=5, gold_miss_action=action
    )
    worker = make_worker()
    submitted, lease = _work(job, worker, lambda item: "b", random.Random(0))
    assert lease.hit.is_gold
    flags = AssignmentFlag.objects.filter(assignment=lease)
    lease.refresh_from_db()
    if action == "off":
        assert not flags.exists() and lease.state == AssignmentState.SUBMITTED
        seal_audit_events()  # the accept and submit events are sealed; no review or flag event follows them
        actions = AuditEvent.objects.filter(object_type="assignment", object_id=str(lease.pk))
        assert list(actions.values_list("action", flat=True)) == ["assignment.accepted", "assignment.submitted"]
    elif action == "flag":
        flag = flags.get()
        assert flag.worker == worker and flag.job == job and flag.evidence["gold_answers"] == 1
        assert lease.state == AssignmentState.SUBMITTED
        event = AuditEvent.objects.get(action="assignment.flagged", object_id=str(lease.pk))
        assert event.after["evidence"]["gold_right"] == 0 and event.after["worker"] == worker.pk
    else:
        assert not flags.exists()
        assert lease.state == AssignmentState.REJECTED and lease.reviewed_at is not None
        assert submitted.state == AssignmentState.REJECTED
        actions = list(
            AuditEvent.objects.filter(object_type="assignment", object_id=str(lease.pk)).values_list(
                "action", flat=True
            )
        )
        assert actions == [
            "assignment.accepted",
            "assignment.submitted",
            "assignment.rejected",
            "assignment.rejected_for_missed_gold",
        ]
    # The grade stays whatever the action: it is evidence for the worker's score.
    assert GoldGrade.objects.get(answer__assignment=lease).score == 0


def test_a_right_gold_answer_is_neither_flagged_nor_rejected(actor, make_worker):
    job = _job(
        actor, normal=1, gold=["a"], gold_rate=0.5, gold_boost_rate=1.0, gold_boost_until=5, gold_miss_action="reject"
    )
    worker = make_worker()
    _, lease = _work(job, worker, lambda item: "a", random.Random(0))
    lease.refresh_from_db()
    assert lease.hit.is_gold and lease.state == AssignmentState.SUBMITTED
    assert not AssignmentFlag.objects.exists()


def test_reject_assignment_moves_only_a_submitted_assignment_and_audits_the_feedback(actor, make_worker):
    job = _job(actor, normal=2)
    worker = make_worker()
    _, lease = _work(job, worker, lambda item: "a", random.Random(0))
    rejected = reject_assignment(assignment=lease, actor=actor, feedback="Too many wrong answers.")
    assert rejected.state == AssignmentState.REJECTED
    lease.refresh_from_db()
    assert lease.state == AssignmentState.REJECTED and lease.reviewed_at is not None
    event = AuditEvent.objects.get(action="assignment.rejected")
    assert event.before == {"state": "submitted"}
    assert event.after["state"] == "rejected" and event.reason == "Too many wrong answers."
    with pytest.raises(InvalidTransition):
        reject_assignment(assignment=lease, actor=actor, feedback="again")
    other = assign_next_hit(job=job, worker=worker)  # accepted, not submitted
    with pytest.raises(InvalidTransition):
        reject_assignment(assignment=other, actor=actor, feedback="not yet")
    assert AuditEvent.objects.filter(action="assignment.rejected").count() == 1


def test_peer_agreement_counts_against_a_worker_whose_answers_ignore_the_item(actor, make_worker):
    # Ordinary items whose true label cycles a-b-c-d; three careful workers answer them right.
    job = _job(actor, normal=12, gold=["a"], redundancy=4, block_below_accuracy=0.6, block_after_gold=1)
    rng = random.Random(0)
    truth = {f"n{i}": LABELS[i % 4] for i in range(12)}
    careful = [make_worker() for _ in range(3)]
    for worker in careful:
        for _ in range(12):
            _work(job, worker, lambda item: truth[item.external_id], rng)
    constant = make_worker()
    for _ in range(12):
        _work(job, constant, lambda item: "a", rng)
    bad = get_dependence_evidence(job=job, worker=constant)
    good = get_dependence_evidence(job=job, worker=careful[0])
    assert bad is not None and good is not None
    assert bad.peer_items == good.peer_items == 12
    # Agreeing 1 time in 4 is what "a" alone gets against these peers: evidence for ignoring the item.
    assert bad.peer_matched == pytest.approx(3.0) and bad.peer_chance == pytest.approx(3.0)
    assert bad.peer_log_ratio > 0.5
    assert good.peer_log_ratio < -2


def test_the_block_weighs_peer_evidence_and_a_blocked_workers_answers_stop_counting_as_peers(actor, make_worker):
    job = _job(
        actor,
        normal=8,
        gold=["b", "c", "d", "b", "c", "d"],
        redundancy=3,
        block_below_accuracy=0.6,
        block_after_gold=2,
        gold_rate=0.0,
    )
    truth = {f"n{i}": LABELS[i % 4] for i in range(8)} | {f"g{i}": x for i, x in enumerate("bcdbcd")}
    rng = random.Random(0)
    careful = [make_worker() for _ in range(2)]
    for worker in careful:
        for _ in range(8):
            _work(job, worker, lambda item: truth[item.external_id], rng)
    constant = make_worker()
    for _ in range(8):
        _work(job, constant, lambda item: "a", rng)
    # Now gold only: the constant worker's wrong gold answers plus the peer evidence block them.
    job.gold_rate = 0.5
    job.gold_boost_rate = 1.0
    job.gold_boost_until = 10
    job.save()
    given = 0
    while not JobBlock.objects.filter(job=job, worker=constant).exists() and given < 6:
        _work(job, constant, lambda item: "a", rng)
        given += 1
    block = JobBlock.objects.get(job=job, worker=constant)
    assert block.evidence["peer_items"] == 8 and block.evidence["peer_log_ratio"] > 0
    assert block.evidence["log_likelihood_ratio"] >= block.evidence["block_at"]
    total = block.evidence["gold_log_ratio"] + block.evidence["peer_log_ratio"]
    assert block.evidence["log_likelihood_ratio"] == pytest.approx(total, abs=1e-3)
    assert block.evidence["gold_answers"] == given <= 5
    # Their ordinary answers were returned to the pool, so they no longer count as anyone's peers.
    assert not Answer.objects.filter(
        worker=constant, assignment__state=AssignmentState.SUBMITTED, item__is_gold=False
    ).exists()
    evidence = get_dependence_evidence(job=job, worker=careful[0])
    assert evidence is not None and evidence.peer_items == 8
    assert not JobBlock.objects.filter(worker__in=careful).exists()


def test_agreeing_with_peers_outweighs_an_unlucky_run_of_gold_but_not_for_a_worker_ignoring_the_item(
    actor, make_worker
):
    # Six gold answers all wrong are 43 times likelier from someone ignoring the item than from someone at
    # the 60% floor: enough on their own at 30:1, not at 50:1. A worker who also agreed with two careful
    # peers on every ordinary item keeps working; one who disagreed with them is blocked.
    gold = ["b", "c", "d", "b", "c", "d"]
    job = _job(
        actor, normal=8, gold=gold * 2, redundancy=4, block_below_accuracy=0.6, block_after_gold=3, gold_rate=0.0
    )
    truth = {f"n{i}": LABELS[i % 4] for i in range(8)} | {f"g{i}": x for i, x in enumerate(gold * 2)}
    rng = random.Random(0)
    careful = [make_worker() for _ in range(2)]
    for worker in careful:
        for _ in range(8):
            _work(job, worker, lambda item: truth[item.external_id], rng)
    unlucky, constant = make_worker(), make_worker()
    for _ in range(8):
        _work(job, unlucky, lambda item: truth[item.external_id], rng)
        _work(job, constant, lambda item: "a", rng)
    job.gold_rate, job.gold_boost_rate, job.gold_boost_until = 1.0, 1.0, 10
    job.save()
    for worker in careful:  # their gold record is the peers' reliability
        for _ in range(6):
            _work(job, worker, lambda item: truth[item.external_id], rng)

    def wrong(item):  # the next label after the right one: wrong, but not always the same label
        return LABELS[(LABELS.index(truth[item.external_id]) + 1) % 4]

    for _ in range(6):
        _work(job, unlucky, wrong, rng)
    evidence = get_dependence_evidence(job=job, worker=unlucky)
    # Their peers: the careful two (always matched) and the constant worker (matched on the two "a" items).
    assert evidence is not None and evidence.peer_items == 8 and evidence.peer_matched == pytest.approx(6.0)
    assert math.log(30) < evidence.gold_log_ratio < math.log(DEPENDENCE_BLOCK_ODDS)
    assert evidence.peer_log_ratio < -2 and evidence.log_ratio < math.log(30)
    assert not JobBlock.objects.filter(worker=unlucky).exists()
    given = 0
    while not JobBlock.objects.filter(job=job, worker=constant).exists() and given < 6:
        _work(job, constant, lambda item: "a", rng)
        given += 1
    block = JobBlock.objects.get(job=job, worker=constant)
    assert block.evidence["gold_answers"] == given <= 6 and block.evidence["gold_right"] == 0
    assert block.evidence["peer_agreement"] == 0.25 and block.evidence["peer_log_ratio"] > 1
    assert (
        block.evidence["log_likelihood_ratio"]
        >= block.evidence["block_at"]
        == round(math.log(DEPENDENCE_BLOCK_ODDS), 4)
    )
    assert not JobBlock.objects.filter(worker__in=careful).exists()
