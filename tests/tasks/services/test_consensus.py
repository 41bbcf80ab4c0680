from __future__ import annotations

import pytest

from tasks.models import Answer, ConsensusLabel, TaskKind, WorkerJobScore
from tasks.services.collection import submit_assignment
from tasks.services.consensus import compute_consensus
from tasks.services.errors import ServiceError
from tasks.services.pool import assign_next_hit
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db


def _work(job, workers, choose):
    """Every worker answers every item of the job: ``choose(worker_index, item_external_id)``."""
    for n, worker in enumerate(workers):
        for _ in range(job.items.count()):
            a = assign_next_hit(job=job, worker=worker)
            item = a.hit.items.get()
            submit_assignment(assignment=a, worker=worker, answers={item.pk: choose(n, item.external_id)})


def test_majority_consensus_is_written_per_item_with_confidence(make_published_job, make_worker, actor):
    job = make_published_job(items=4, redundancy=3, consensus_method="mv")
    workers = [make_worker() for _ in range(3)]
    # worker 2 disagrees on every item; the other two agree on "pos"
    _work(job, workers, lambda n, ext: "neg" if n == 2 else "pos")
    result = compute_consensus(job=job, actor=actor)
    assert (result.items, result.answers, result.version) == (4, 12, 1)
    rows = list(ConsensusLabel.objects.filter(job=job))
    assert {r.value for r in rows} == {"pos"}
    assert {r.answers_count for r in rows} == {3}
    for r in rows:
        assert r.confidence == pytest.approx(r.probabilities["pos"])
        assert sum(r.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
        assert set(r.probabilities) == {"pos", "neg", "neutral"}
    assert AuditEvent.objects.get(action="consensus.computed").after["items"] == 4
    scores = {s.worker_id: s for s in WorkerJobScore.objects.filter(job=job)}
    assert [scores[w.pk].agreement for w in workers] == [1.0, 1.0, 0.0]
    assert {s.answers for s in scores.values()} == {4}


def test_dawid_skene_outvotes_a_spammer_that_majority_cannot(make_published_job, make_worker, actor):
    job = make_published_job(items=12, redundancy=3)
    workers = [make_worker() for _ in range(3)]
    truth = {f"item-{i}": ("pos" if i % 2 else "neg") for i in range(10_000)}

    def choose(n, ext):
        if n == 0:
            return truth[ext]  # reliable
        if n == 1:
            return "pos"  # always the same label
        return truth[ext] if int(ext.split("-")[1]) % 3 else "neutral"  # mostly right

    _work(job, workers, choose)
    compute_consensus(job=job, actor=actor, method="ds")
    got = dict(ConsensusLabel.objects.filter(job=job).values_list("item__external_id", "value"))
    assert sum(got[e] == truth[e] for e in got) >= 11


def test_rerunning_replaces_the_previous_consensus_and_bumps_the_version(make_published_job, make_worker, actor):
    job = make_published_job(items=2, redundancy=1)
    _work(job, [make_worker()], lambda n, ext: "neg")
    compute_consensus(job=job, actor=actor)
    second = compute_consensus(job=job, actor=actor, method="ds")
    assert second.version == 2
    assert ConsensusLabel.objects.filter(job=job).count() == 2
    assert set(ConsensusLabel.objects.filter(job=job).values_list("method", "version")) == {("ds", 2)}


def test_multilabel_consensus_keeps_labels_most_workers_ticked(make_published_job, make_worker, actor):
    job = make_published_job(items=1, redundancy=3, task_kind=TaskKind.TEXT_MULTILABEL, labels=["a", "b", "c"])
    picks = [["a", "b"], ["a"], ["a", "b"]]
    _work(job, [make_worker() for _ in range(3)], lambda n, ext: picks[n])
    compute_consensus(job=job, actor=actor)
    row = ConsensusLabel.objects.get(job=job)
    assert row.value == ["a", "b"]
    assert 0.5 < row.confidence <= 1.0
    assert set(row.probabilities) <= {"a", "b", "c"}


def test_it_refuses_unknown_methods_and_jobs_without_answers(make_published_job, actor):
    job = make_published_job(items=1)
    with pytest.raises(ServiceError, match="no answers"):
        compute_consensus(job=job, actor=actor)
    with pytest.raises(ServiceError, match="Unknown consensus method"):
        compute_consensus(job=job, actor=actor, method="best")
    assert not Answer.objects.exists()
