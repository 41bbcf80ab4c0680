"""Adaptive redundancy on MTurk under a short budget: a HIT of the uniform sweep that MTurk will not extend
does not hold the pass up; the neediest HIT still gets its answers."""

from __future__ import annotations

from typing import Any

import pytest

from tasks.models import Hit, Job
from tasks.reports.estimate import hits_cost
from tasks.services.adaptive import allocate_adaptive_answers
from tasks.services.mturk_collect import collect_mturk_work
from tests.marketplaces.mturk_standin import MTurkStandIn
from tests.tasks.services.mturk_helpers import ACTOR, published_mturk_job
from workforce.marketplaces.base import MarketplaceError
from workforce.marketplaces.mturk import MTurkMarketplace

pytestmark = pytest.mark.django_db


def test_a_sweep_hit_mturk_refuses_to_extend_does_not_starve_the_disputed_one(
    mturk: MTurkMarketplace, standin: MTurkStandIn
) -> None:
    job = published_mturk_job(
        mturk, 3, labels=["pos", "neg"], adaptive_min_answers=2, adaptive_max_answers=9, adaptive_target=0.9
    )
    unit = hits_cost(job, hit_count=1, extra_per_hit=1)
    Job.objects.filter(pk=job.pk).update(budget_cap=job.budget_reserved + 14 * unit)  # 20 in all: sweep depth 3
    refused, easy, hard = Hit.objects.filter(job=job).order_by("pk")
    given = {hit.pk: 0 for hit in (refused, easy, hard)}

    def answer_what_is_wanted() -> None:
        for hit in Hit.objects.filter(job=job).order_by("pk"):
            for _ in range(hit.assignments_wanted - given[hit.pk]):
                label = "neg" if hit.pk == hard.pk and given[hit.pk] % 2 else "pos"  # the hard one stays split
                external = standin.state.accept(str(hit.external_id), f"AW{hit.pk}-{given[hit.pk]}")
                standin.state.external_submit(
                    [("assignmentId", external), (f"item:{hit.items.get().external_id}", label)]
                )
                given[hit.pk] += 1
        collect_mturk_work(actor=ACTOR, connector=mturk)

    answer_what_is_wanted()
    extend = mturk.create_additional_assignments

    def refuse_one(hit_id: str, **kwargs: Any) -> Any:
        if hit_id == refused.external_id:
            raise MarketplaceError("This HIT is currently in the state 'Disposed'.", permanent=True)
        return extend(hit_id, **kwargs)

    mturk.create_additional_assignments = refuse_one  # type: ignore[method-assign]
    for _ in range(4):
        allocate_adaptive_answers(job=job, actor=ACTOR, connector=mturk)
        answer_what_is_wanted()
    wanted = dict(Hit.objects.filter(job=job).values_list("pk", "assignments_wanted"))
    assert wanted[refused.pk] == 2 and wanted[easy.pk] == 3  # swept where MTurk allowed it
    assert wanted[hard.pk] >= 5  # the pass went on to the least settled HIT
    job.refresh_from_db()
    assert job.budget_reserved <= job.budget_cap  # type: ignore[operator]
