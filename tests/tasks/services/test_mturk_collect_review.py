"""Collecting MTurk work and paying for it (against the local stand-in): upserts on the AssignmentId,
approvals and bonuses booked once, whatever is retried."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tasks.models import (
    Answer,
    Assignment,
    AssignmentState,
    CostKind,
    CostStatus,
    Hit,
    JobBlock,
    MTurkBonus,
    MTurkBonusState,
)
from tasks.services.errors import ServiceError
from tasks.services.mturk_collect import collect_mturk_work
from tasks.services.mturk_hits import extend_mturk_hit, reconcile_mturk_hits, set_mturk_job_availability
from tasks.services.mturk_review import (
    approve_mturk_assignment,
    guard_mturk_auto_approval,
    override_mturk_rejection,
    reject_mturk_assignment,
    retry_pending_mturk_bonuses,
    send_mturk_bonus,
)
from tests.marketplaces.mturk_standin import FaultPlan, MTurkStandIn
from tests.tasks.services.mturk_helpers import ACTOR, ledger_total, published_mturk_job
from workforce.marketplaces.mturk import MTurkMarketplace
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db


def _work(standin: MTurkStandIn, hit: Hit, worker: str, label: str) -> str:
    assignment = standin.state.accept(str(hit.external_id), worker)
    item = hit.items.get().external_id
    standin.state.external_submit([("assignmentId", assignment), (f"item:{item}", label)])
    return assignment


def _collected(mturk: MTurkMarketplace, standin: MTurkStandIn) -> tuple[Hit, list[Assignment]]:
    job = published_mturk_job(mturk, 1)
    hit = Hit.objects.get(job=job)
    ids = [_work(standin, hit, f"AW{n}", label) for n, label in enumerate(["pos", "neg"])]
    collect_mturk_work(actor=ACTOR, connector=mturk)
    return hit, [Assignment.objects.get(external_id=i) for i in ids]


def test_collect_records_submitted_work_once(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    hit, assignments = _collected(mturk, standin)
    again = collect_mturk_work(actor=ACTOR, connector=mturk)
    assert again.assignments_created == 0
    assert [a.state for a in assignments] == [AssignmentState.SUBMITTED] * 2
    assert sorted(Answer.objects.filter(assignment__hit=hit).values_list("value", flat=True)) == ["neg", "pos"]
    hit.refresh_from_db()
    assert hit.assignments_submitted == 2


def test_work_mturk_approved_by_itself_is_charged_when_collected(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    _, assignments = _collected(mturk, standin)
    standin.state.assignments[str(assignments[0].external_id)]["AssignmentStatus"] = "Approved"
    result = collect_mturk_work(actor=ACTOR, connector=mturk)
    assert result.charges_booked == 2
    assert ledger_total(assignment=assignments[0], status=CostStatus.CHARGED) == Decimal("0.06")
    collect_mturk_work(actor=ACTOR, connector=mturk)
    assert ledger_total(status=CostStatus.CHARGED) == Decimal("0.06")


def test_approve_charges_reward_and_fee_and_reject_charges_nothing(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    _, (first, second) = _collected(mturk, standin)
    approve_mturk_assignment(assignment=first, actor=ACTOR, connector=mturk, feedback="Thanks")
    approve_mturk_assignment(assignment=first, actor=ACTOR, connector=mturk)  # a retry changes nothing
    reject_mturk_assignment(assignment=second, actor=ACTOR, feedback="Wrong on a gold item", connector=mturk)
    assert standin.state.assignments[str(first.external_id)]["AssignmentStatus"] == "Approved"
    assert standin.state.assignments[str(second.external_id)]["RequesterFeedback"] == "Wrong on a gold item"
    charged = dict(
        (kind, amount)
        for kind, amount in first.cost_entries.filter(status=CostStatus.CHARGED).values_list("kind", "amount")
    )
    assert charged == {CostKind.REWARD: Decimal("0.05"), CostKind.MARKETPLACE_FEE: Decimal("0.01")}
    assert not second.cost_entries.exists()
    with pytest.raises(ServiceError, match="feedback"):
        reject_mturk_assignment(assignment=first, actor=ACTOR, feedback=" ", connector=mturk)


def test_a_rejection_can_be_overridden_within_30_days_only(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    _, (first, second) = _collected(mturk, standin)
    for a in (first, second):
        reject_mturk_assignment(assignment=a, actor=ACTOR, feedback="Missed", connector=mturk)
    override_mturk_rejection(assignment=first, actor=ACTOR, connector=mturk, feedback="Our mistake")
    first.refresh_from_db()
    assert first.state == AssignmentState.APPROVED
    assert standin.state.assignments[str(first.external_id)]["AssignmentStatus"] == "Approved"
    assert ledger_total(assignment=first) == Decimal("0.06")
    Assignment.objects.filter(pk=second.pk).update(reviewed_at=timezone.now() - timedelta(days=31))
    with pytest.raises(ServiceError, match="30 days"):
        override_mturk_rejection(assignment=second, actor=ACTOR, connector=mturk)


def test_a_bonus_is_paid_once_per_key_even_when_its_reply_is_lost(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    _, (first, _) = _collected(mturk, standin)
    plan = FaultPlan(rate=1.0, kinds=("lost",), operations=frozenset({"SendBonus"}))
    with standin.faults(plan):
        bonus = send_mturk_bonus(
            assignment=first,
            amount=Decimal("0.30"),
            reason="Great work",
            idempotency_key="b1",
            actor=ACTOR,
            connector=mturk,
        )
    again = send_mturk_bonus(
        assignment=first,
        amount=Decimal("0.30"),
        reason="Great work",
        idempotency_key="b1",
        actor=ACTOR,
        connector=mturk,
    )
    assert bonus.pk == again.pk and bonus.state == MTurkBonusState.SENT
    assert len(standin.state.bonuses) == 1
    assert ledger_total(kind=CostKind.BONUS) == Decimal("0.30")
    assert ledger_total(status=CostStatus.CHARGED) == Decimal("0.36")
    assert ledger_total() == standin.state.total_charged()


def test_a_bonus_whose_worker_died_is_sent_again_with_the_same_token(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    _, (first, _) = _collected(mturk, standin)
    MTurkBonus.objects.create(
        job=first.job,
        assignment=first,
        worker=first.worker,
        amount=Decimal("0.10"),
        reason="Streak",
        idempotency_key="b2",
        token="bonus:b2",
        created_at=timezone.now(),
    )
    # The dead worker's SendBonus reached MTurk before it died.
    mturk.send_bonus(
        worker_id=first.worker.external_id,
        assignment_id=str(first.external_id),
        amount=Decimal("0.10"),
        reason="Streak",
        token="bonus:b2",
    )
    assert retry_pending_mturk_bonuses(actor=ACTOR, connector=mturk) == 1
    assert len(standin.state.bonuses) == 1
    assert ledger_total() == standin.state.total_charged()


def test_extra_assignments_respect_the_ten_assignment_rule(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    job = published_mturk_job(mturk, 1)
    hit = Hit.objects.get(job=job)
    extend_mturk_hit(hit=hit, additional=6, actor=ACTOR, connector=mturk)
    hit.refresh_from_db()
    assert hit.assignments_wanted == 9 == standin.state.hits[str(hit.external_id)]["MaxAssignments"]
    with pytest.raises(ServiceError, match="fewer than 10"):
        extend_mturk_hit(hit=hit, additional=1, actor=ACTOR, connector=mturk)
    assert ledger_total(job=job) == standin.state.total_charged() == Decimal("0.54")


def test_pause_expires_every_hit_and_resume_reopens_them(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    job = published_mturk_job(mturk, 2)
    assert set_mturk_job_availability(job=job, open_=False, actor=ACTOR, connector=mturk) == 2
    now = timezone.now().timestamp()
    assert all(h["Expiration"] < now for h in standin.state.hits.values())
    set_mturk_job_availability(job=job, open_=True, actor=ACTOR, connector=mturk)
    assert all(h["Expiration"] > now for h in standin.state.hits.values())


def test_reconcile_adopts_our_unrecorded_hits_and_expires_orphans(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    job = published_mturk_job(mturk, 2)
    lost = Hit.objects.filter(job=job).first()
    assert lost is not None
    remote_id = lost.external_id
    Hit.objects.filter(pk=lost.pk).update(external_id=None, state="publishing")  # as if never recorded
    orphan = mturk.publish(
        __import__("dataclasses").replace(_any_spec(job, lost), hit_id="00000000-0000-4000-8000-000000000001")
    )
    foreign = mturk.publish(__import__("dataclasses").replace(_any_spec(job, lost), hit_id="not-ours"))
    result = reconcile_mturk_hits(actor=ACTOR, connector=mturk)
    assert result.adopted == [remote_id]
    assert result.expired == [orphan.external_id]
    assert result.foreign == 1
    assert Hit.objects.get(pk=lost.pk).external_id == remote_id
    assert standin.state.hits[foreign.external_id]["Expiration"] > timezone.now().timestamp()
    assert AuditEvent.objects.filter(action="mturk.orphan_expired").count() == 1


def _any_spec(job, hit):  # type: ignore[no-untyped-def]
    from tasks.services.mturk_common import hit_spec, job_options

    return hit_spec(job=job, hit=hit, options=job_options(job), requirements=[])


def test_the_guard_approves_work_near_auto_approval_and_flags_blocked_workers(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    _, (first, second) = _collected(mturk, standin)
    JobBlock.objects.create(job=first.job, worker=second.worker, reason="gold", created_at=timezone.now())
    assert guard_mturk_auto_approval(actor=ACTOR, connector=mturk).approved == []  # days away yet
    Assignment.objects.filter(pk__in=[first.pk, second.pk]).update(
        submitted_at=timezone.now() - timedelta(days=2, hours=1)
    )
    result = guard_mturk_auto_approval(actor=ACTOR, connector=mturk, margin=timedelta(hours=24))
    assert result.approved == [first.pk] and result.flagged == [second.pk]
    assert standin.state.assignments[str(first.external_id)]["AssignmentStatus"] == "Approved"
    assert AuditEvent.objects.filter(action="mturk.assignment_flagged", object_id=str(second.pk)).exists()


def test_a_pending_bonus_past_the_token_window_is_checked_not_resent(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    _, (first, second) = _collected(mturk, standin)
    old = timezone.now() - timedelta(hours=30)
    for n, assignment in enumerate((first, second)):
        MTurkBonus.objects.create(
            job=assignment.job,
            assignment=assignment,
            worker=assignment.worker,
            amount=Decimal("0.20"),
            reason="Streak",
            idempotency_key=f"old{n}",
            token=f"bonus:old{n}",
            created_at=old,
        )
    standin.state.tokens.clear()  # MTurk forgot the tokens after 24 hours
    mturk.send_bonus(  # the first one had been paid before the crash
        worker_id=first.worker.external_id,
        assignment_id=str(first.external_id),
        amount=Decimal("0.20"),
        reason="Streak",
        token="x",
    )
    assert retry_pending_mturk_bonuses(actor=ACTOR, connector=mturk) == 1
    assert len(standin.state.bonuses) == 1
    assert MTurkBonus.objects.get(idempotency_key="old0").state == MTurkBonusState.SENT
    assert MTurkBonus.objects.get(idempotency_key="old1").state == MTurkBonusState.PENDING
    assert AuditEvent.objects.filter(action="mturk.bonus_flagged", object_id=str(second.pk)).exists()
    assert ledger_total() == standin.state.total_charged()


def test_finished_hits_are_deleted_once_every_assignment_is_reviewed(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    from tasks.services.mturk_hits import delete_done_mturk_hits

    hit, _ = _collected(mturk, standin)
    _work(standin, hit, "AW9", "pos")
    collect_mturk_work(actor=ACTOR, connector=mturk)
    hit.refresh_from_db()
    assert hit.state == "complete"
    assert delete_done_mturk_hits(actor=ACTOR, connector=mturk) == 0  # submitted work is still unreviewed
    for assignment in Assignment.objects.filter(hit=hit):
        approve_mturk_assignment(assignment=assignment, actor=ACTOR, connector=mturk)
    assert delete_done_mturk_hits(actor=ACTOR, connector=mturk) == 1
    assert standin.state.hits[str(hit.external_id)].get("_deleted") is True
    assert delete_done_mturk_hits(actor=ACTOR, connector=mturk) == 0


def test_an_html_question_carries_the_items_and_posts_to_mturk(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    published_mturk_job(mturk, 1, mturk_options={"question": "html", "masters": True})
    (remote,) = standin.state.hits.values()
    assert remote["Question"].startswith("<HTMLQuestion")
    assert 'name="place:1"' in remote["Question"] and "text of t0" in remote["Question"]
    assert "https://workersandbox.mturk.com/mturk/externalSubmit" in remote["Question"]
    # Masters: 25% fee: $0.05 -> $0.0125 -> $0.01 per assignment, the minimum.
    assert ledger_total() == standin.state.total_charged() == Decimal("0.18")


def test_collect_polls_the_least_recently_polled_open_hits_first(
    mturk: MTurkMarketplace, standin: MTurkStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.services import mturk_collect

    job = published_mturk_job(mturk, 3)
    monkeypatch.setattr(mturk_collect, "POLL_OPEN_HITS", 2)
    hits = list(Hit.objects.filter(job=job).order_by("id"))
    collect_mturk_work(actor=ACTOR, connector=mturk)
    collect_mturk_work(actor=ACTOR, connector=mturk)
    polled = {h.pk: h.mturk.polled_at for h in Hit.objects.filter(job=job).select_related("mturk")}
    assert all(polled[h.pk] is not None for h in hits)  # the third HIT got its turn on the second run
    assert standin.state.calls["ListAssignmentsForHIT"] == 4


def test_an_adaptive_mturk_hit_gets_one_more_assignment_when_its_answers_disagree(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    from tasks.services.adaptive import allocate_adaptive_answers

    job = published_mturk_job(
        mturk, 1, labels=["pos", "neg"], adaptive_min_answers=2, adaptive_max_answers=9, adaptive_target=0.9
    )
    hit = Hit.objects.get(job=job)
    assert standin.state.hits[str(hit.external_id)]["MaxAssignments"] == 2
    for n, label in enumerate(["pos", "neg"]):
        _work(standin, hit, f"AW{n}", label)
    collect_mturk_work(actor=ACTOR, connector=mturk)
    assert allocate_adaptive_answers(job=job, actor=ACTOR, connector=mturk) == 1
    hit.refresh_from_db()
    assert hit.assignments_wanted == 3 == standin.state.hits[str(hit.external_id)]["MaxAssignments"]
    assert ledger_total(job=job) == standin.state.total_charged()
