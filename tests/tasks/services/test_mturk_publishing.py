"""Publishing to MTurk (against the local stand-in): once per Hit whatever fails, with its cost committed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tasks.models import CostEntry, CostStatus, Hit, HitState, JobState, MTurkHit
from tasks.services.errors import ServiceError
from tasks.services.mturk_publishing import _claim, publish_mturk_hits
from tasks.services.publishing import publish_job, request_publish
from tests.marketplaces.mturk_standin import FaultPlan, MTurkStandIn
from tests.tasks.services.mturk_helpers import ACTOR, ledger_total, mturk_job, published_mturk_job
from workforce.marketplaces.mturk import MTurkMarketplace

pytestmark = pytest.mark.django_db


def test_a_published_job_has_one_remote_hit_per_hit_and_the_ledger_matches(
    mturk: MTurkMarketplace, standin: MTurkStandIn, django_capture_on_commit_callbacks
) -> None:
    job = mturk_job(4)
    with django_capture_on_commit_callbacks(execute=True):
        request_publish(job=job, actor=ACTOR)
    job.refresh_from_db()
    assert job.state == JobState.PUBLISHED
    hits = list(Hit.objects.filter(job=job))
    assert len(standin.state.hits) == 4 == len(hits)
    assert {h.state for h in hits} == {HitState.OPEN}
    assert {h.external_id for h in hits} == set(standin.state.hits)
    assert {r["RequesterAnnotation"] for r in standin.state.hits.values()} == {str(h.uuid) for h in hits}
    # 3 assignments x $0.05, fee 20% = $0.01 each: $0.18 per HIT, committed.
    assert ledger_total(job=job, status=CostStatus.COMMITTED) == Decimal("0.72") == standin.state.total_charged()
    # One reward and one fee row per assignment slot (4 HITs x 3), so each approval settles exactly one slot.
    assert CostEntry.objects.filter(job=job).count() == 24


def test_publishing_is_refused_when_the_balance_does_not_cover_it(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    standin.state.balance = Decimal("0.50")
    job = mturk_job(3)
    with pytest.raises(ServiceError, match=r"balance \(\$0.50\) does not cover 3 HIT\(s\).*\$0.54"):
        request_publish(job=job, actor=ACTOR)
    job.refresh_from_db()
    assert job.state == JobState.DRAFT and not standin.state.hits


def test_a_reply_lost_after_mturk_created_the_hit_adopts_it(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    plan = FaultPlan(rate=1.0, kinds=("lost",), operations=frozenset({"CreateHITWithHITType"}))
    with standin.faults(plan):
        job = published_mturk_job(mturk, 2)
    assert plan.injected["lost"] >= 2
    assert len(standin.state.hits) == 2
    assert set(MTurkHit.objects.filter(hit__job=job).values_list("adopted", flat=True)) == {True}
    assert ledger_total(job=job) == standin.state.total_charged()


def test_throttling_and_service_faults_are_retried_to_success(mturk: MTurkMarketplace, standin: MTurkStandIn) -> None:
    plan = FaultPlan(rate=0.3, kinds=("throttle", "5xx"), seed=3)
    with standin.faults(plan):
        job = published_mturk_job(mturk, 6)
    assert sum(plan.injected.values()) > 0
    assert len(standin.state.hits) == 6 == Hit.objects.filter(job=job, state=HitState.OPEN).count()
    assert ledger_total(job=job) == standin.state.total_charged()


def test_a_crash_between_the_call_and_the_record_is_picked_up_without_a_duplicate(
    mturk: MTurkMarketplace, standin: MTurkStandIn, settings
) -> None:
    job = publish_job(job=mturk_job(3), actor=ACTOR)
    from django.utils import timezone

    from tasks.services.mturk_common import hit_spec, job_options

    claimed = _claim(job=job, now=timezone.now(), limit=2)
    for hit in claimed:  # the worker called MTurk, then died before recording anything
        mturk.publish(hit_spec(job=job, hit=hit, options=job_options(job), requirements=[]))
    assert len(standin.state.hits) == 2
    settings.MTURK_PUBLISH_STALE_SECONDS = 3600
    first = publish_mturk_hits(job=job, actor=ACTOR, connector=mturk)
    assert first.published == 1  # the stale window protects the crashed claims for now
    settings.MTURK_PUBLISH_STALE_SECONDS = 0
    second = publish_mturk_hits(job=job, actor=ACTOR, connector=mturk)
    assert second.adopted == 2
    assert len(standin.state.hits) == 3
    assert Hit.objects.filter(job=job, state=HitState.OPEN, external_id__isnull=False).count() == 3
    assert ledger_total(job=job) == standin.state.total_charged()


def test_a_permanent_refusal_puts_the_hit_back_to_draft_with_the_reason(mturk: MTurkMarketplace) -> None:
    job = publish_job(job=mturk_job(1), actor=ACTOR)
    with pytest.raises(ServiceError, match="refused"):
        publish_mturk_hits(job=job, actor=ACTOR, connector=_broken(mturk))
    hit = Hit.objects.get(job=job)
    assert hit.state == HitState.DRAFT and hit.external_id is None
    assert MTurkHit.objects.get(hit=hit).last_error == "MTurk RequestError: refused"
    assert not CostEntry.objects.filter(job=job).exists()


def _broken(connector: MTurkMarketplace) -> MTurkMarketplace:
    from workforce.marketplaces.base import MarketplaceError

    class Refusing(MTurkMarketplace):
        def publish(self, spec):  # type: ignore[no-untyped-def]
            raise MarketplaceError("MTurk RequestError: refused", permanent=True)

    return Refusing(connector.caller, connector.config)


def test_non_usd_or_sub_cent_rewards_are_refused_before_publishing(mturk: MTurkMarketplace) -> None:
    with pytest.raises(ServiceError, match="USD"):
        request_publish(job=mturk_job(1, currency="EUR"), actor=ACTOR)
    with pytest.raises(ServiceError, match="whole number of cents"):
        request_publish(job=mturk_job(1, reward=Decimal("0.055")), actor=ACTOR)


def test_mturk_is_refused_while_disabled(settings) -> None:
    settings.MTURK_ENABLED = False
    with pytest.raises(ServiceError, match="not enabled"):
        request_publish(job=mturk_job(1), actor=ACTOR)


def test_the_internal_pool_never_hands_out_an_mturk_jobs_hits(mturk: MTurkMarketplace, make_worker) -> None:
    from tasks.services.errors import NoWorkAvailable
    from tasks.services.pool import assign_next_hit

    job = published_mturk_job(mturk, 1)
    with pytest.raises(NoWorkAvailable, match="Amazon Mechanical Turk"):
        assign_next_hit(job=job, worker=make_worker())


def test_the_sweep_publishes_what_is_pending_and_reports_a_refused_job(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    from tasks.services.mturk_publishing import publish_pending_mturk_hits

    fine = publish_job(job=mturk_job(2), actor=ACTOR)
    broke = publish_job(job=mturk_job(1, reward=Decimal("0.05")), actor=ACTOR)
    from tasks.models import Job

    Job.objects.filter(pk=broke.pk).update(currency="EUR")  # changed after publishing: MTurk refuses it now
    result = publish_pending_mturk_hits(actor=ACTOR, connector=mturk)
    assert result.published == 2 and [job_id for job_id, _ in result.failed] == [broke.pk]
    assert Hit.objects.filter(job=fine, state=HitState.OPEN).count() == 2
    assert not Hit.objects.filter(job=broke, external_id__isnull=False).exists()


def test_a_second_hit_for_a_recorded_hit_is_never_recorded_and_reconcile_expires_it(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    from tasks.services.mturk_common import hit_spec, job_options
    from tasks.services.mturk_hits import reconcile_mturk_hits
    from tasks.services.mturk_publishing import record_published_hit
    from workforce.marketplaces.base import MarketplaceError

    job = published_mturk_job(mturk, 1)
    hit = Hit.objects.get(job=job)
    standin.state.tokens.clear()  # a day later MTurk has forgotten the token
    duplicate = mturk.publish(hit_spec(job=job, hit=hit, options=job_options(job), requirements=[]))
    with pytest.raises(MarketplaceError, match="also has"):
        record_published_hit(hit=hit, published=duplicate, hit_type_id="", actor=ACTOR)
    assert Hit.objects.get(pk=hit.pk).external_id == hit.external_id
    assert reconcile_mturk_hits(actor=ACTOR, connector=mturk).expired == [duplicate.external_id]
    assert (
        standin.state.hits[duplicate.external_id]["Expiration"] < standin.state.hits[str(hit.external_id)]["Expiration"]
    )
