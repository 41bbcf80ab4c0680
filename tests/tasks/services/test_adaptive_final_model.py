"""A live job keeps the final aggregation's reading of its answers at every re-fit; while its budget is short,
an item is settled only when that model, too, expects its label not to change (the replay's rule)."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.aggregation.adaptive import mixture_moments
from tasks.models import AdaptiveSkills, Item
from tasks.services.adaptive_state import items_state, load_skills, refit_adaptive_skills
from tests.tasks.services.test_adaptive import _publish, _run_crowd

pytestmark = pytest.mark.django_db


def _mixed(item: Item, index: int) -> str:
    """Worker 0 answers neg on the hard items, the others pos: the fit has someone to doubt."""
    return "neg" if item.external_id.startswith("hard") and index == 0 else "pos"


def test_a_refit_keeps_the_final_models_matrices_prior_and_moments(make_worker):
    job = _publish(3, 3)
    workers = [make_worker() for _ in range(4)]
    _run_crowd(job, workers, answer=_mixed)
    row = refit_adaptive_skills(job=job)
    k = len(job.labels)
    final = row.final_model
    assert np.asarray(final["log_conf"]).shape == (len(row.workers) + 1, k, k)
    assert np.asarray(final["mean"]).shape == np.asarray(final["var"]).shape == (k, k, k)
    assert np.exp(final["log_prior"]).sum() == pytest.approx(1.0)
    # every worker's column of answered labels is a distribution, the population row too
    np.testing.assert_allclose(np.exp(np.asarray(final["log_conf"])).sum(axis=1), 1.0)
    view = load_skills(job)
    assert view.final is not None
    np.testing.assert_allclose(view.final.skills.log_conf, final["log_conf"])


def _doubt_every_worker(job_id: int, accuracy: float) -> None:
    """Replace the stored final model by one that reads every worker as right with ``accuracy``."""
    row = AdaptiveSkills.objects.get(job_id=job_id)
    k = len(row.labels)
    conf = np.full((k, k), (1.0 - accuracy) / (k - 1))
    np.fill_diagonal(conf, accuracy)
    log_conf = np.log(np.broadcast_to(conf, (len(row.workers) + 1, k, k)))
    moments = mixture_moments(log_conf[:-1], np.ones(len(row.workers)))
    row.final_model = {
        "log_conf": log_conf.tolist(),
        "log_prior": np.log(np.full(k, 1.0 / k)).tolist(),
        "mean": moments.mean.tolist(),
        "var": moments.var.tolist(),
    }
    row.save(update_fields=["final_model"])


def test_a_short_budget_counts_an_item_settled_only_when_both_models_agree(make_worker):
    job = _publish(3, 3, adaptive_target=0.99)
    _run_crowd(job, [make_worker() for _ in range(4)], answer=_mixed)
    refit_adaptive_skills(job=job)
    ids = list(Item.objects.filter(job=job).order_by("pk").values_list("pk", flat=True))
    view = load_skills(job)
    plenty = items_state(job, ids, view)
    short = items_state(job, ids, view, short_budget=True)
    assert (short.settled <= plenty.settled + 1e-12).all()
    # a final fit that barely trusts anyone keeps items open that the allocation alone would stop
    _doubt_every_worker(job.pk, 0.6)
    doubtful = items_state(job, ids, load_skills(job), short_budget=True)
    assert not plenty.wants.any()
    assert doubtful.wants.all()
    assert (doubtful.settled < plenty.settled).all()
    assert (items_state(job, ids, load_skills(job)).settled == plenty.settled).all()  # only a short budget asks
    # the posteriors and gains the allocation ranks by are the allocation model's either way
    np.testing.assert_allclose(short.confidence, plenty.confidence)
    np.testing.assert_allclose(short.gain, plenty.gain)


def test_skills_fitted_before_the_final_model_was_kept_still_load(make_worker):
    job = _publish(2, 2)
    _run_crowd(job, [make_worker() for _ in range(3)], answer=_mixed)
    refit_adaptive_skills(job=job)
    AdaptiveSkills.objects.filter(job=job).update(final_model={})
    view = load_skills(job)
    assert view.final is None
    ids = list(Item.objects.filter(job=job).values_list("pk", flat=True))
    np.testing.assert_allclose(
        items_state(job, ids, view, short_budget=True).settled, items_state(job, ids, view).settled
    )
