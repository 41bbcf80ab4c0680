"""An extension MTurk made whose booking was lost (our transaction rolled back after MTurk's answer): what
MTurk took for it is booked before anyone asks for more, and by the reconcile if nobody does, so the ledger
always equals what MTurk charged and a retry never pays twice."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest
from botocore.stub import Stubber
from django.db import transaction
from django.utils import timezone

from tasks.models import Assignment, Hit, HitState, Job, MTurkHit
from tasks.services import mturk_hits
from tasks.services.budget import exact
from tasks.services.errors import ServiceError
from tasks.services.mturk_collect import collect_mturk_work
from tasks.services.mturk_hits import extend_mturk_hit, extend_mturk_hits_within_budget, reconcile_mturk_hits
from tasks.services.mturk_publishing import record_published_hit
from tests.marketplaces.mturk_standin import MTurkStandIn
from tests.tasks.services import mturk_helpers
from tests.tasks.services.mturk_helpers import ACTOR, mturk_job, published_mturk_job
from workforce.marketplaces.base import PublishedHit
from workforce.marketplaces.mturk import MTurkMarketplace, request_token
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
SLOT = Decimal("0.06")  # a $0.05 reward and MTurk's $0.01 fee


class Crash(Exception):
    """The process dies after MTurk answered, before our booking commits."""


def ledger_total(**filters: Any) -> Decimal:
    return exact(mturk_helpers.ledger_total(**filters))  # exact: SQLite sums decimals as floats


def _reserved(job: Job) -> Decimal:
    return Job.objects.values_list("budget_reserved", flat=True).get(pk=job.pk)


def _one_hit_job(mturk: MTurkMarketplace, **fields: Any) -> tuple[Job, Hit]:
    job = published_mturk_job(mturk, 1, **fields)  # one HIT of three assignments (by default)
    return job, Hit.objects.get(job=job)


def _lose_an_extension(hit: Hit, mturk: MTurkMarketplace, additional: int = 1) -> None:
    """``additional`` more assignments reach MTurk (it takes their money); our transaction then rolls back."""
    with pytest.raises(Crash), transaction.atomic():
        extend_mturk_hit(hit=hit, additional=additional, actor=ACTOR, connector=mturk)
        raise Crash


def _max_assignments(standin: MTurkStandIn, hit: Hit) -> int:
    return int(standin.state.hits[str(hit.external_id)]["MaxAssignments"])


def test_a_different_extension_after_a_lost_one_books_what_mturk_took_for_both(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    job, hit = _one_hit_job(mturk)
    audit = mturk_hits.record_audit_event

    def crash_on_booking(**kwargs: Any) -> Any:
        if kwargs.get("action") == "mturk.hit_extended":
            raise Crash
        return audit(**kwargs)

    mturk_hits.record_audit_event = crash_on_booking  # type: ignore[assignment]
    try:
        with pytest.raises(Crash):
            extend_mturk_hits_within_budget(job=job, hits=[hit], extra=1, actor=ACTOR, key="more", reason="more")
    finally:
        mturk_hits.record_audit_event = audit  # type: ignore[assignment]
    assert _max_assignments(standin, hit) == 4 and ledger_total(job=job) == 3 * SLOT  # MTurk took a 4th slot

    done = extend_mturk_hits_within_budget(
        job=job, hits=[Hit.objects.get(pk=hit.pk)], extra=2, actor=ACTOR, key="more", reason="more"
    )
    assert done.extended == 1
    hit.refresh_from_db()
    assert ledger_total(job=job) == standin.state.total_charged()
    assert hit.assignments_wanted == _max_assignments(standin, hit) == 5  # the request was for five in all
    assert _reserved(job) >= ledger_total(job=job)
    adopted = AuditEvent.objects.get(action="mturk.extension_adopted", object_id=str(hit.pk))
    assert adopted.before == {"assignments_wanted": 3} and adopted.after["slots"] == 1
    assert adopted.after["amount"] == str(SLOT)
    assert AuditEvent.objects.filter(action="mturk.hit_extended", object_id=str(hit.pk)).count() == 1


def test_a_retry_of_a_lost_extension_never_pays_twice(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    job, hit = _one_hit_job(mturk)
    _lose_an_extension(hit, mturk)
    charged = standin.state.total_charged()
    extend_mturk_hit(hit=Hit.objects.get(pk=hit.pk), additional=1, actor=ACTOR, connector=mturk)
    hit.refresh_from_db()
    assert standin.state.total_charged() == charged == 4 * SLOT  # MTurk was not asked again
    assert standin.state.calls["CreateAdditionalAssignmentsForHIT"] == 1
    assert hit.assignments_wanted == _max_assignments(standin, hit) == 4
    assert ledger_total(job=job) == charged


def test_the_reconcile_books_a_lost_extension_nobody_asks_for_again(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    job, hit = _one_hit_job(mturk)
    _lose_an_extension(hit, mturk, additional=2)
    assert ledger_total(job=job) == 3 * SLOT == _reserved(job)

    result = reconcile_mturk_hits(actor=ACTOR, connector=mturk)
    hit.refresh_from_db()
    assert ledger_total(job=job) == standin.state.total_charged() == 5 * SLOT
    assert hit.assignments_wanted == _max_assignments(standin, hit) == 5
    assert _reserved(job) == 5 * SLOT  # the budget holds it too
    assert result.extended == [hit.external_id] and result.escrow_changed == 0
    event = AuditEvent.objects.get(action="mturk.extension_adopted", object_id=str(hit.pk))
    assert event.after["slots"] == 2 and event.after["assignments_wanted"] == 5

    again = reconcile_mturk_hits(actor=ACTOR, connector=mturk)  # once
    assert again.extended == [] and ledger_total(job=job) == 5 * SLOT == _reserved(job)
    assert AuditEvent.objects.filter(action="mturk.extension_adopted").count() == 1


def test_the_reconcile_books_a_lost_extension_before_giving_back_an_expired_hits_unfilled_slots(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    job, hit = _one_hit_job(mturk)
    assignment = standin.state.accept(str(hit.external_id), "AW1")
    standin.state.external_submit([("assignmentId", assignment), (f"item:{hit.items.get().external_id}", "pos")])
    collect_mturk_work(actor=ACTOR, connector=mturk)
    _lose_an_extension(hit, mturk)
    standin.state.hits[str(hit.external_id)]["Expiration"] = time.time() - 1  # 3 of its 4 slots come back
    reconcile_mturk_hits(actor=ACTOR, connector=mturk)
    assert ledger_total(job=job) == standin.state.total_charged() == SLOT
    assert Hit.objects.get(pk=hit.pk).assignments_wanted == 4
    assert Assignment.objects.filter(hit=hit).count() == 1


def test_adopted_slots_pay_the_fee_of_the_hits_original_size(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    """A HIT created with 10 assignments pays MTurk's 40% on each extra one, a HIT of three 20%."""
    for fields in ({"redundancy": 10, "reward": Decimal("0.50")}, {"reward": Decimal("0.50")}):
        _, hit = _one_hit_job(mturk, **fields)
        _lose_an_extension(hit, mturk)
        before = standin.state.total_charged()
        reconcile_mturk_hits(actor=ACTOR, connector=mturk)
        assert ledger_total() == standin.state.total_charged() == before
    fees = [str(e.after["amount"]) for e in AuditEvent.objects.filter(action="mturk.extension_adopted").order_by("id")]
    assert fees == ["0.70", "0.60"]  # 0.50 + 0.20 (40%), 0.50 + 0.10 (20%)


def test_a_complete_hit_is_open_again_once_its_lost_extension_is_adopted(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    _, hit = _one_hit_job(mturk)
    Hit.objects.filter(pk=hit.pk).update(state=HitState.COMPLETE)
    _lose_an_extension(hit, mturk)  # the extension opened it; the rollback leaves it complete
    reconcile_mturk_hits(actor=ACTOR, connector=mturk)
    assert Hit.objects.get(pk=hit.pk).state == HitState.OPEN


def _stubbed_hit(mturk: MTurkMarketplace) -> Hit:
    job = mturk_job(1)
    job.state = "published"
    job.save()
    hit = Hit.objects.create(job=job, marketplace="mturk", assignments_wanted=3, state="publishing")
    MTurkHit.objects.create(hit=hit, intent_at=timezone.now(), max_assignments=3, reward=Decimal("0.05"))
    published = PublishedHit(hit_id=str(hit.uuid), external_id="H1", expires_at=None)
    record_published_hit(hit=hit, published=published, hit_type_id="T1", actor=ACTOR)
    return Hit.objects.get(pk=hit.pk)


def test_after_a_lost_extension_mturk_is_asked_only_for_what_the_total_still_lacks(
    stubbed: MTurkMarketplace,
) -> None:
    hit = _stubbed_hit(stubbed)
    reply = {
        "HIT": {
            "HITId": "H1",
            "HITTypeId": "T1",
            "HITStatus": "Assignable",
            "MaxAssignments": 4,  # a +1 reached MTurk; its booking was lost
            "Reward": "0.05",
            "RequesterAnnotation": str(hit.uuid),
        }
    }
    token = request_token("extend", hit.uuid.hex, "6")
    with Stubber(stubbed.caller.client) as stub:
        stub.add_response("get_hit", reply, {"HITId": "H1"})
        stub.add_response(
            "create_additional_assignments_for_hit",
            {},
            {"HITId": "H1", "NumberOfAdditionalAssignments": 2, "UniqueRequestToken": token},
        )
        extend_mturk_hit(hit=hit, additional=3, actor=ACTOR, connector=stubbed)
        stub.assert_no_pending_responses()
    assert Hit.objects.get(pk=hit.pk).assignments_wanted == 6
    assert ledger_total(hit=hit) == 6 * SLOT


def test_a_cancelled_hit_is_not_extended_and_mturk_is_not_asked(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    job, hit = _one_hit_job(mturk)
    Hit.objects.filter(pk=hit.pk).update(state=HitState.CANCELLED)
    before = standin.state.total_charged()
    with pytest.raises(ServiceError, match="cancelled"):
        extend_mturk_hit(hit=hit, additional=1, actor=ACTOR, connector=mturk)
    hit.refresh_from_db()
    assert (hit.state, hit.assignments_wanted, _max_assignments(standin, hit)) == (HitState.CANCELLED, 3, 3)
    assert standin.state.total_charged() == before and ledger_total(job=job) == 3 * SLOT


def test_a_cancelled_jobs_complete_hit_is_not_extended_and_nothing_is_reserved(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    from tasks.services.publishing import cancel_job

    job, hit = _one_hit_job(mturk)
    Hit.objects.filter(pk=hit.pk).update(state=HitState.COMPLETE)  # complete Hits stay complete on a cancel
    job = cancel_job(job=job, actor=ACTOR)
    reserved, charged = _reserved(job), standin.state.total_charged()
    done = extend_mturk_hits_within_budget(
        job=job, hits=[Hit.objects.get(pk=hit.pk)], extra=1, actor=ACTOR, key="more", reason="more", connector=mturk
    )
    assert (done.extended, done.refused) == (0, 1)
    assert (_reserved(job), standin.state.total_charged(), _max_assignments(standin, hit)) == (reserved, charged, 3)
    assert Hit.objects.get(pk=hit.pk).state == HitState.COMPLETE
