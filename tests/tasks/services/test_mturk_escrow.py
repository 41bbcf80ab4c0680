"""MTurk HITs that expire with slots nobody filled, and rejected assignments: MTurk gives their reward and fee
back, and the ledger (reversals), the budget (a release) and the stand-in's balance agree, exactly once."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from botocore.stub import Stubber
from django.utils import timezone

from tasks.models import (
    Assignment,
    AssignmentState,
    BudgetReservation,
    CostEntry,
    CostKind,
    Hit,
    HitItem,
    Job,
    MTurkHit,
)
from tasks.reports.reconciliation import reconcile_mturk
from tasks.services.budget import exact
from tasks.services.mturk_collect import collect_mturk_work
from tasks.services.mturk_escrow import release_unfilled_mturk_slots
from tasks.services.mturk_hits import (
    delete_done_mturk_hits,
    extend_mturk_hit,
    reconcile_mturk_hits,
    set_mturk_job_availability,
)
from tasks.services.mturk_publishing import record_published_hit
from tasks.services.publishing import cancel_job
from tasks.services.review import approve_assignment, reject_assignment
from tests.marketplaces.mturk_standin import MTurkStandIn
from tests.tasks.services import mturk_helpers
from tests.tasks.services.mturk_helpers import ACTOR, mturk_job, published_mturk_job
from workforce.marketplaces.base import PublishedHit
from workforce.marketplaces.mturk import MTurkMarketplace
from workforce.marketplaces.mturk_records import MTurkRecords
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
SLOT = Decimal("0.06")  # a $0.05 reward and MTurk's $0.01 fee (20%, at least a cent)
OPENING = Decimal("10000.00")  # the stand-in's opening balance


def ledger_total(**filters: Any) -> Decimal:
    return exact(mturk_helpers.ledger_total(**filters))  # exact: SQLite sums decimals as floats


def _one_hit_job(mturk: MTurkMarketplace) -> tuple[Job, Hit]:
    job = published_mturk_job(mturk, 1)  # one HIT of three assignments
    return job, Hit.objects.get(job=job)


def _submit(standin: MTurkStandIn, hit: Hit, worker: str) -> str:
    assignment = standin.state.accept(str(hit.external_id), worker)
    item = hit.items.get().external_id
    standin.state.external_submit([("assignmentId", assignment), (f"item:{item}", "pos")])
    return assignment


def _lifetime_ends(standin: MTurkStandIn, hit: Hit) -> None:
    """The HIT's lifetime runs out, on MTurk and in what we recorded at publishing."""
    standin.state.hits[str(hit.external_id)]["Expiration"] = time.time() - 1
    MTurkHit.objects.filter(hit=hit).update(expires_at=timezone.now() - timedelta(seconds=1))


def _reserved(job: Job) -> Decimal:
    return Job.objects.values_list("budget_reserved", flat=True).get(pk=job.pk)


def _matches_mturk(job: Job, mturk: MTurkMarketplace, standin: MTurkStandIn) -> bool:
    assert ledger_total() == standin.state.total_charged()
    report = reconcile_mturk(job=job, records=MTurkRecords(mturk.caller.client), opening_balance=OPENING)
    assert report.balance == standin.state.balance
    return not report.differences


def test_an_expired_partly_filled_hit_releases_exactly_its_unfilled_slots_once(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    job, hit = _one_hit_job(mturk)
    submitted = _submit(standin, hit, "AW1")
    collect_mturk_work(actor=ACTOR, connector=mturk)
    committed, reserved = ledger_total(job=job), _reserved(job)
    assert committed == 3 * SLOT and reserved == committed
    _lifetime_ends(standin, hit)

    result = collect_mturk_work(actor=ACTOR, connector=mturk)
    assert result.slots_released == 2
    assert ledger_total(job=job) == committed - 2 * SLOT
    assert _reserved(job) == reserved - 2 * SLOT
    reversals = CostEntry.objects.filter(job=job, kind=CostKind.REVERSAL)
    assert reversals.count() == 4  # two slots, each a reward and a fee row
    assert _matches_mturk(job, mturk, standin)
    event = AuditEvent.objects.get(action="mturk.unfilled_released")
    assert event.object_id == str(hit.pk) and event.after["slots"] == 2 and event.after["amount"] == "0.1200"
    assert AuditEvent.objects.filter(action="budget.released").count() == 1

    again = collect_mturk_work(actor=ACTOR, connector=mturk)  # a second pass (or a retry) does nothing
    assert again.slots_released == 0
    assert reversals.count() == 4 and BudgetReservation.objects.filter(job=job, amount__lt=0).count() == 1
    assert ledger_total(job=job) == committed - 2 * SLOT and _reserved(job) == reserved - 2 * SLOT
    assert AuditEvent.objects.filter(action="mturk.unfilled_released").count() == 1

    # The work that did arrive is still paid from its own slot.
    approve_assignment(assignment=Assignment.objects.get(external_id=submitted), actor=ACTOR)
    assert ledger_total(job=job) == SLOT == _reserved(job)
    assert _matches_mturk(job, mturk, standin)


def test_a_slot_held_by_work_in_progress_is_released_only_once_the_worker_gives_it_up(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    job, hit = _one_hit_job(mturk)
    in_progress = standin.state.accept(str(hit.external_id), "AW1")
    _lifetime_ends(standin, hit)
    assert collect_mturk_work(actor=ACTOR, connector=mturk).slots_released == 2
    assert ledger_total(job=job) == SLOT and _matches_mturk(job, mturk, standin)
    standin.state.abandon(in_progress)  # the worker's time ran out: MTurk returns that slot's money too
    assert collect_mturk_work(actor=ACTOR, connector=mturk).slots_released == 1
    assert ledger_total(job=job) == 0 == _reserved(job)
    assert _matches_mturk(job, mturk, standin)
    assert collect_mturk_work(actor=ACTOR, connector=mturk).slots_released == 0
    assert CostEntry.objects.filter(job=job, kind=CostKind.REVERSAL).count() == 6


def test_pause_releases_the_unfilled_slots_and_resume_commits_them_again(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    job, hit = _one_hit_job(mturk)
    _submit(standin, hit, "AW1")
    collect_mturk_work(actor=ACTOR, connector=mturk)
    reserved = _reserved(job)
    set_mturk_job_availability(job=job, open_=False, actor=ACTOR, connector=mturk)
    assert ledger_total(job=job) == SLOT == reserved - 2 * SLOT == _reserved(job)
    assert _matches_mturk(job, mturk, standin)
    set_mturk_job_availability(job=job, open_=True, actor=ACTOR, connector=mturk)  # MTurk holds them again
    assert ledger_total(job=job) == 3 * SLOT == _reserved(job)
    assert AuditEvent.objects.filter(action="mturk.unfilled_recommitted").count() == 1
    assert _matches_mturk(job, mturk, standin)
    # A HIT live again is not released by the pass; paused again, the slots committed again go back again.
    assert collect_mturk_work(actor=ACTOR, connector=mturk).slots_released == 0
    set_mturk_job_availability(job=job, open_=False, actor=ACTOR, connector=mturk)
    set_mturk_job_availability(job=job, open_=False, actor=ACTOR, connector=mturk)
    assert ledger_total(job=job) == SLOT == _reserved(job)
    assert AuditEvent.objects.filter(action="mturk.unfilled_released").count() == 2
    assert _matches_mturk(job, mturk, standin)


def test_a_resume_the_months_cap_cannot_take_still_books_what_mturk_holds(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    """The ledger records what MTurk did whatever the caps say; the refused reservation is in the event."""
    from tasks.models import MonthlyBudget
    from tasks.services.budget import month_of, set_monthly_cap

    job, _ = _one_hit_job(mturk)
    set_mturk_job_availability(job=job, open_=False, actor=ACTOR, connector=mturk)
    assert ledger_total(job=job) == 0
    month = month_of(timezone.now())
    held = MonthlyBudget.objects.filter(month=month).values_list("reserved", flat=True).first() or Decimal(0)
    set_monthly_cap(month=month, cap=held, actor=ACTOR)  # no room left this month
    set_mturk_job_availability(job=job, open_=True, actor=ACTOR, connector=mturk)
    assert ledger_total(job=job) == 3 * SLOT
    assert _matches_mturk(job, mturk, standin)
    event = AuditEvent.objects.get(action="mturk.unfilled_recommitted")
    assert "monthly cap" in event.after["reservation_refused"]


def test_a_resume_the_budget_cannot_take_is_refused_before_mturk_is_asked(
    mturk: MTurkMarketplace, standin: MTurkStandIn, django_capture_on_commit_callbacks: Any
) -> None:
    from tasks.models import MonthlyBudget
    from tasks.services.budget import BudgetExceeded, month_of, set_monthly_cap
    from tasks.services.mturk_escrow import unfilled_held_back
    from tasks.services.publishing import pause_job, resume_job

    job, hit = _one_hit_job(mturk)
    _submit(standin, hit, "AW1")
    collect_mturk_work(actor=ACTOR, connector=mturk)
    with django_capture_on_commit_callbacks(execute=True):
        pause_job(job=job, actor=ACTOR)
    assert unfilled_held_back(job) == 2 * SLOT  # the two slots nobody took
    month = month_of(timezone.now())
    held = MonthlyBudget.objects.filter(month=month).values_list("reserved", flat=True).first() or Decimal(0)
    set_monthly_cap(month=month, cap=held + SLOT, actor=ACTOR)  # room for one slot, not two
    with pytest.raises(BudgetExceeded, match=r"Resuming puts 0\.12 USD back into MTurk's escrow"):
        resume_job(job=Job.objects.get(pk=job.pk), actor=ACTOR)
    assert Job.objects.get(pk=job.pk).state == "paused"
    assert standin.state.hits[str(hit.external_id)]["Expiration"] <= time.time()  # MTurk was not asked
    set_monthly_cap(month=month, cap=held + 2 * SLOT, actor=ACTOR)
    with django_capture_on_commit_callbacks(execute=True):
        resume_job(job=Job.objects.get(pk=job.pk), actor=ACTOR)
    assert standin.state.hits[str(hit.external_id)]["Expiration"] > time.time()
    assert unfilled_held_back(job) == 0 and ledger_total(job=job) == 3 * SLOT
    assert _matches_mturk(job, mturk, standin)


def test_reconcile_releases_a_hit_expired_on_mturk_that_we_still_think_live(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    job, hit = _one_hit_job(mturk)
    standin.state.hits[str(hit.external_id)]["Expiration"] = time.time() - 1  # expired from MTurk's console
    assert collect_mturk_work(actor=ACTOR, connector=mturk).slots_released == 0  # our record says it is live
    result = reconcile_mturk_hits(actor=ACTOR, connector=mturk)
    assert result.escrow_changed == 1 and result.expired == []
    assert ledger_total(job=job) == 0 == _reserved(job)
    assert reconcile_mturk_hits(actor=ACTOR, connector=mturk).escrow_changed == 0
    assert _matches_mturk(job, mturk, standin)


def test_reconcile_expires_the_hits_of_a_job_paused_while_mturk_could_not_be_told(
    mturk: MTurkMarketplace, standin: MTurkStandIn, django_capture_on_commit_callbacks: Any
) -> None:
    """The pause's call to MTurk runs after commit, through the broker; when it never runs, the hourly
    reconcile expires the paused job's live HITs and gives their unfilled slots back."""
    from tasks.services.publishing import pause_job

    job, hit = _one_hit_job(mturk)
    with django_capture_on_commit_callbacks(execute=False):  # the broker is down: the task is never sent
        pause_job(job=job, actor=ACTOR)
    assert standin.state.hits[str(hit.external_id)]["Expiration"] > time.time()  # MTurk still offers it
    result = reconcile_mturk_hits(actor=ACTOR, connector=mturk)
    assert result.expired == [str(hit.external_id)] and result.escrow_changed == 1
    assert standin.state.hits[str(hit.external_id)]["Expiration"] <= time.time()
    assert ledger_total(job=job) == 0 == _reserved(job)
    assert AuditEvent.objects.filter(action="mturk.paused_hit_expired", object_id=str(hit.pk)).count() == 1
    assert reconcile_mturk_hits(actor=ACTOR, connector=mturk).expired == []  # once
    assert _matches_mturk(job, mturk, standin)


def test_reconcile_reopens_the_hits_of_a_job_resumed_while_mturk_could_not_be_told(
    mturk: MTurkMarketplace, standin: MTurkStandIn, django_capture_on_commit_callbacks: Any
) -> None:
    """The pause reached MTurk, the resume did not (broker down): the reconcile opens the paused HITs again
    and commits their unfilled slots again, once; a HIT whose lifetime simply ended stays expired."""
    from tasks.services.publishing import pause_job, resume_job

    job, hit = _one_hit_job(mturk)
    other, ended = _one_hit_job(mturk)
    with django_capture_on_commit_callbacks(execute=True):
        pause_job(job=job, actor=ACTOR)
    assert standin.state.hits[str(hit.external_id)]["Expiration"] <= time.time()
    assert ledger_total(job=job) == 0
    with django_capture_on_commit_callbacks(execute=False):  # the broker is down: MTurk is never told
        resume_job(job=job, actor=ACTOR)
    _lifetime_ends(standin, ended)
    collect_mturk_work(actor=ACTOR, connector=mturk)  # the ended HIT's slots go back as usual
    result = reconcile_mturk_hits(actor=ACTOR, connector=mturk)
    assert result.reopened == [str(hit.external_id)] and result.expired == []
    assert standin.state.hits[str(hit.external_id)]["Expiration"] > time.time() + 3600
    assert standin.state.hits[str(ended.external_id)]["Expiration"] <= time.time()
    assert ledger_total(job=job) == 3 * SLOT == _reserved(job)
    assert ledger_total(job=other) == 0
    assert AuditEvent.objects.filter(action="mturk.resumed_hit_reopened", object_id=str(hit.pk)).count() == 1
    assert reconcile_mturk_hits(actor=ACTOR, connector=mturk).reopened == []  # once
    assert _matches_mturk(job, mturk, standin)
    with django_capture_on_commit_callbacks(execute=True):  # paused again, it is released again
        pause_job(job=job, actor=ACTOR)
    assert ledger_total(job=job) == 0 and reconcile_mturk_hits(actor=ACTOR, connector=mturk).reopened == []


def test_the_reconcile_does_not_reopen_a_hit_of_a_job_paused_while_it_runs(
    mturk: MTurkMarketplace, standin: MTurkStandIn, django_capture_on_commit_callbacks: Any
) -> None:
    """Both jobs' resumes were lost; while the reconcile reopens the first job's HIT, an operator pauses the
    second job and its pause reaches MTurk. The reconcile reads the job's state again before each call."""
    from tasks.services.publishing import pause_job, resume_job

    jobs = [published_mturk_job(mturk, 1) for _ in range(2)]
    for job in jobs:
        with django_capture_on_commit_callbacks(execute=True):
            pause_job(job=job, actor=ACTOR)
        with django_capture_on_commit_callbacks(execute=False):  # the broker is down: MTurk is never told
            resume_job(job=Job.objects.get(pk=job.pk), actor=ACTOR)
    hits = {str(Hit.objects.get(job=job).external_id): job for job in jobs}
    reopen = mturk.set_expiration

    def reopen_then_pause_the_other(hit_id: str, when: Any) -> None:
        reopen(hit_id, when)
        for other_hit, other in hits.items():
            if other_hit != hit_id and Job.objects.get(pk=other.pk).state == "published":
                with django_capture_on_commit_callbacks(execute=True):
                    pause_job(job=Job.objects.get(pk=other.pk), actor=ACTOR)

    mturk.set_expiration = reopen_then_pause_the_other  # type: ignore[method-assign]
    result = reconcile_mturk_hits(actor=ACTOR, connector=mturk)
    assert len(result.reopened) == 1
    for hit_id, job in hits.items():
        paused = Job.objects.get(pk=job.pk).state == "paused"
        live = standin.state.hits[hit_id]["Expiration"] > time.time()
        assert paused != live, (job.pk, paused, live)
        assert MTurkHit.objects.get(hit__external_id=hit_id).paused == paused


def test_extra_assignments_never_taken_are_released_when_the_hit_expires(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    job, hit = _one_hit_job(mturk)
    for worker in ("AW1", "AW2", "AW3"):
        _submit(standin, hit, worker)
    collect_mturk_work(actor=ACTOR, connector=mturk)
    extend_mturk_hit(hit=hit, additional=2, actor=ACTOR, connector=mturk)
    assert ledger_total(job=job) == 5 * SLOT == standin.state.total_charged()
    _lifetime_ends(standin, hit)
    assert collect_mturk_work(actor=ACTOR, connector=mturk).slots_released == 2
    assert ledger_total(job=job) == 3 * SLOT
    assert _matches_mturk(job, mturk, standin)


def test_a_cancelled_job_gives_back_its_unfilled_slots_and_the_rest_of_its_reservation(
    mturk: MTurkMarketplace, standin: MTurkStandIn, django_capture_on_commit_callbacks: Any
) -> None:
    job, hit = _one_hit_job(mturk)
    submitted = _submit(standin, hit, "AW1")
    collect_mturk_work(actor=ACTOR, connector=mturk)
    with django_capture_on_commit_callbacks(execute=True):  # the HITs are expired after commit (eager Celery)
        cancel_job(job=job, actor=ACTOR, reason="enough")
    assert ledger_total(job=job) == SLOT and _matches_mturk(job, mturk, standin)
    reject_assignment(assignment=Assignment.objects.get(external_id=submitted), actor=ACTOR, feedback="Spam")
    assert ledger_total(job=job) == 0 == _reserved(job)
    assert _matches_mturk(job, mturk, standin)


def test_work_rejected_on_mturk_itself_is_released_once_when_collected(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    job, hit = _one_hit_job(mturk)
    external = _submit(standin, hit, "AW1")
    collect_mturk_work(actor=ACTOR, connector=mturk)
    reserved = _reserved(job)
    standin.state.RejectAssignment({"AssignmentId": external, "RequesterFeedback": "from the requester site"})
    assert collect_mturk_work(actor=ACTOR, connector=mturk).slots_released == 1
    assert Assignment.objects.get(external_id=external).state == AssignmentState.REJECTED
    assert ledger_total(job=job) == 2 * SLOT and _reserved(job) == reserved - SLOT
    assert collect_mturk_work(actor=ACTOR, connector=mturk).slots_released == 0
    assert ledger_total(job=job) == 2 * SLOT and _reserved(job) == reserved - SLOT
    assert _matches_mturk(job, mturk, standin)
    event = AuditEvent.objects.get(action="mturk.rejected_slot_released")
    assert event.after["amount"] == "0.0600" and AuditEvent.objects.filter(action="budget.released").count() == 1


def test_a_done_hit_gives_back_what_it_still_holds_before_it_is_deleted(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    job, hit = _one_hit_job(mturk)
    Hit.objects.filter(pk=hit.pk).update(state="cancelled")  # cancelled, expired two days ago, never synced
    standin.state.hits[str(hit.external_id)]["Expiration"] = time.time() - 2 * 86400
    MTurkHit.objects.filter(hit=hit).update(expires_at=timezone.now() - timedelta(days=2))
    assert delete_done_mturk_hits(actor=ACTOR, connector=mturk) == 1
    assert standin.state.hits[str(hit.external_id)]["_deleted"] is True
    assert ledger_total(job=job) == 0 and _matches_mturk(job, mturk, standin)


def _hit_reply(hit_id: str, annotation: str, **counts: int) -> dict[str, object]:
    return {
        "HIT": {
            "HITId": hit_id,
            "HITTypeId": "T1",
            "HITStatus": "Reviewable",
            "MaxAssignments": 3,
            "Reward": "0.05",
            "RequesterAnnotation": annotation,
            "Expiration": timezone.now() - timedelta(minutes=5),
            "NumberOfAssignmentsAvailable": counts.get("available", 0),
            "NumberOfAssignmentsPending": counts.get("pending", 0),
            "NumberOfAssignmentsCompleted": counts.get("completed", 0),
        }
    }


def test_the_expiry_pass_reads_each_due_hit_with_gethit_and_releases_once(stubbed: MTurkMarketplace) -> None:
    job = mturk_job(1)
    job.state = "published"
    job.save()
    hit = Hit.objects.create(job=job, marketplace="mturk", assignments_wanted=3, state="publishing")
    MTurkHit.objects.create(hit=hit, intent_at=timezone.now(), max_assignments=3, reward=Decimal("0.05"))
    past = timezone.now() - timedelta(minutes=5)
    record_published_hit(
        hit=hit, published=PublishedHit(hit_id=str(hit.uuid), external_id="H1", expires_at=past), hit_type_id="T1",
        actor=ACTOR,
    )  # fmt: skip
    assert ledger_total(job=job) == 3 * SLOT
    with Stubber(stubbed.caller.client) as stub:
        # One worker still holds a slot: two are unfilled. The second pass finds the same and does nothing.
        for _ in range(2):
            stub.add_response("get_hit", _hit_reply("H1", str(hit.uuid), available=2, pending=1), {"HITId": "H1"})
        first = release_unfilled_mturk_slots(actor=ACTOR, connector=stubbed)
        second = release_unfilled_mturk_slots(actor=ACTOR, connector=stubbed)
        stub.assert_no_pending_responses()
    assert (first.hits_checked, first.slots_released, first.released) == (1, 2, 2 * SLOT)
    assert (second.hits_checked, second.slots_released) == (1, 0)
    assert ledger_total(job=job) == SLOT
    keys = set(CostEntry.objects.filter(kind=CostKind.REVERSAL).values_list("idempotency_key", flat=True))
    assert keys == {f"mturk:hit:{hit.uuid}:unfilled:{n}:{part}" for n in (1, 2) for part in ("reward", "fee")}


def test_available_counts_are_never_trusted_beyond_what_the_hit_has(stubbed: MTurkMarketplace) -> None:
    from tasks.services.mturk_escrow import unfilled_slots
    from workforce.marketplaces.mturk.connector import _remote_hit

    expired = _hit_reply("H1", "x", available=3, pending=1, completed=1)["HIT"]
    assert unfilled_slots(_remote_hit(expired), now=timezone.now()) == 1  # type: ignore[arg-type]
    live = {**expired, "Expiration": timezone.now() + timedelta(hours=1)}  # type: ignore[dict-item]
    assert unfilled_slots(_remote_hit(live), now=timezone.now()) == 0


def test_rejected_work_on_a_hit_this_ledger_never_committed_releases_its_unit_cost_once(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    from dataclasses import replace

    from tasks.services.budget import reserve_budget
    from tasks.services.mturk_common import hit_spec, job_options

    job = mturk_job(1)
    job.state = "published"
    job.save()
    hit = Hit.objects.create(job=job, marketplace="mturk", assignments_wanted=3, state="open")
    HitItem.objects.create(hit=hit, item=job.items.get(), position=0)
    remote = mturk.publish(
        replace(hit_spec(job=job, hit=hit, options=job_options(job), requirements=[]), hit_id=str(hit.uuid))
    )  # made on MTurk elsewhere: no MTurkHit row and no committed slots here (as for results-file imports)
    Hit.objects.filter(pk=hit.pk).update(external_id=remote.external_id)
    hit.refresh_from_db()
    reserve_budget(job=job, amount=3 * SLOT, key="imported", actor=ACTOR)
    external = _submit(standin, hit, "AW1")
    collect_mturk_work(actor=ACTOR, connector=mturk)
    reject_assignment(assignment=Assignment.objects.get(external_id=external), actor=ACTOR, feedback="Spam")
    collect_mturk_work(actor=ACTOR, connector=mturk)
    assert _reserved(job) == 2 * SLOT and ledger_total(job=job) == 0
    assert BudgetReservation.objects.filter(job=job, amount__lt=0).count() == 1
