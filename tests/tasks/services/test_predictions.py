"""Model predictions: all-or-nothing import, uncertain items first, pre-labels on the page, the model as
one more annotator in consensus, rubber-stamping and active-learning reads."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from tasks.models import ConsensusLabel, Hit, JobState, Prediction, WorkerJobScore
from tasks.selectors_predictions import (
    count_disagreements_by_day,
    count_gold_without_prediction,
    iter_retraining_items,
    list_active_learning,
    list_prelabel_acceptance,
)
from tasks.services.collection import submit_assignment
from tasks.services.consensus import compute_consensus
from tasks.services.errors import ImportValidationError, ServiceError
from tasks.services.pool import assign_next_hit
from tasks.services.predictions import import_predictions_from_text
from tasks.services.publishing import publish_job
from tests.factories import ItemFactory, JobFactory
from workforce.audit import Actor
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
SYSTEM = Actor.system("test")
CSV = "external_id,label,score\ni0,pos,0.95\ni1,neg,0.40\ni2,pos,0.10\n"


def _job(items: int = 3, **fields: object):
    job = JobFactory(state=JobState.DRAFT, **fields)
    for n in range(items):
        ItemFactory(job=job, external_id=f"i{n}")
    return publish_job(job=job, actor=SYSTEM)


def test_import_stores_predictions_and_serves_the_least_certain_items_first(make_worker) -> None:
    job = _job()
    result = import_predictions_from_text(job=job, text=CSV, filename="p.csv", model_name="m1", actor=SYSTEM)
    assert (result.rows, result.created, result.updated, result.hits_reprioritised) == (3, 3, 0, 3)
    priorities = dict(Hit.objects.filter(job=job).values_list("items__external_id", "priority"))
    assert priorities == {"i0": -5, "i1": -60, "i2": -90}
    worker = make_worker()
    assert assign_next_hit(job=job, worker=worker).hit.items.get().external_id == "i2"
    again = import_predictions_from_text(
        job=job, text=CSV.replace("0.10", "0.99"), filename="p.csv", model_name="m1", actor=SYSTEM
    )
    assert (again.created, again.updated) == (0, 3)
    assert Prediction.objects.get(item__external_id="i2").score == 0.99
    assert AuditEvent.objects.filter(action="predictions.imported").count() == 2


def test_predictions_imported_before_publishing_order_the_hits_built_at_publish(make_worker) -> None:
    job = JobFactory(state=JobState.DRAFT)
    for n in range(3):
        ItemFactory(job=job, external_id=f"i{n}")
    result = import_predictions_from_text(job=job, text=CSV, filename="p.csv", model_name="m1", actor=SYSTEM)
    assert result.hits_reprioritised == 0  # no Hits yet
    job = publish_job(job=job, actor=SYSTEM)
    priorities = dict(Hit.objects.filter(job=job).values_list("items__external_id", "priority"))
    assert priorities == {"i0": -5, "i1": -60, "i2": -90}
    assert assign_next_hit(job=job, worker=make_worker()).hit.items.get().external_id == "i2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("external_id,label,score\nnope,pos,0.5\n", "no item 'nope'"),
        ("external_id,label,score\ni0,maybe,0.5\n", "Choose one of"),
        ("external_id,label,score\ni0,pos,1.5\n", "not between 0 and 1"),
        ("external_id,label,score\ni0,pos,high\n", "not a number"),
        ("id,label\ni0,pos\n", "header must have"),
    ],
)
def test_a_bad_row_imports_nothing(text: str, message: str) -> None:
    job = _job()
    with pytest.raises(ImportValidationError, match=message):
        import_predictions_from_text(job=job, text=text, filename="p.csv", model_name="m1", actor=SYSTEM)
    assert not Prediction.objects.exists()
    with pytest.raises(ServiceError, match="Name the model"):
        import_predictions_from_text(job=job, text=CSV, filename="p.csv", model_name=" ", actor=SYSTEM)


def test_jsonl_and_the_command(tmp_path, capsys) -> None:
    job = _job()
    path = tmp_path / "p.jsonl"
    path.write_text('{"external_id": "i0", "label": "neg", "score": 0.7}\n')
    call_command("import_predictions", "--job", str(job.pk), "--model", "m2", str(path), "--json")
    out = json.loads(capsys.readouterr().out)
    assert out["created"] == 1 and out["job"] == job.pk
    path.write_text("not json\n")
    with pytest.raises(CommandError, match="bad row") as raised:
        call_command("import_predictions", "--job", str(job.pk), "--model", "m2", str(path))
    assert raised.value.returncode == 2


def test_pre_labels_are_shown_to_workers_only_when_the_job_asks(make_worker) -> None:
    job = _job(items=1)
    import_predictions_from_text(
        job=job, text=CSV.splitlines()[0] + "\ni0,pos,0.9\n", filename="p.csv", model_name="m1", actor=SYSTEM
    )
    worker = make_worker()
    client = Client()
    client.force_login(worker.user)
    lease = assign_next_hit(job=job, worker=worker)
    page = client.get(f"/work/tasks/{lease.uuid}/").content.decode()
    assert "suggested" not in page
    job.prelabel_model = "m1"
    job.save(update_fields=["prelabel_model"])
    page = client.get(f"/work/tasks/{lease.uuid}/").content.decode()
    assert 'value="pos" required checked data-prelabel="1"' in page and "suggested" in page
    item_id = lease.hit.items.get().pk
    data = client.post(
        f"/work/tasks/{lease.uuid}/submit/", {f"answer-{item_id}": "pos"}, HTTP_ACCEPT="application/json"
    ).json()
    assert data["next"] is None  # one item only; nothing else to hand out


def test_rubber_stamping_and_gold_without_predictions_are_visible(make_worker) -> None:
    job = _job(items=2, prelabel_model="m1", redundancy=1)
    gold = ItemFactory(job=job, external_id="g", is_gold=True, gold_answer="neg")
    import_predictions_from_text(
        job=job,
        text="external_id,label,score\ni0,pos,0.9\ni1,neg,0.8\n",
        filename="p.csv",
        model_name="m1",
        actor=SYSTEM,
    )
    assert count_gold_without_prediction(job) == 1
    import_predictions_from_text(
        job=job, text="external_id,label,score\ng,pos,0.9\n", filename="g.csv", model_name="m1", actor=SYSTEM
    )
    assert count_gold_without_prediction(job) == 0
    worker = make_worker()
    for _ in range(2):
        lease = assign_next_hit(job=job, worker=worker)
        item = lease.hit.items.get()
        submit_assignment(assignment=lease, worker=worker, answers={item.pk: "pos"})
    from tasks.models import Answer, Assignment

    hit = Hit.objects.create(job=job, state="open", assignments_wanted=1)
    hit.hit_items.create(item=gold, position=0)
    from django.utils import timezone

    now = timezone.now()
    stamped = Assignment.objects.create(
        hit=hit, job=job, worker=worker, state="submitted", accepted_at=now, lease_expires_at=now, reward=job.reward
    )
    Answer.objects.create(assignment=stamped, item=gold, job=job, worker=worker, value="pos")
    [row] = list_prelabel_acceptance(job)
    assert (row.shown, row.accepted, row.wrong_accepted_on_gold) == (3, 2, 1)


def test_the_model_votes_in_consensus_but_gets_no_worker_score(make_worker) -> None:
    job = _job(items=2, redundancy=2, consensus_method="ds")
    workers = [make_worker(), make_worker()]
    votes = {"i0": ("pos", "neg"), "i1": ("neg", "neg")}
    for index, worker in enumerate(workers):
        for _ in range(2):
            lease = assign_next_hit(job=job, worker=worker)
            item = lease.hit.items.get()
            submit_assignment(assignment=lease, worker=worker, answers={item.pk: votes[item.external_id][index]})
    compute_consensus(job=job, actor=SYSTEM, method="mv")
    tied = ConsensusLabel.objects.get(item__external_id="i0")
    assert tied.confidence == pytest.approx(0.5)
    import_predictions_from_text(
        job=job,
        text="external_id,label,score\ni0,pos,0.9\ni1,pos,0.6\n",
        filename="p.csv",
        model_name="m",
        actor=SYSTEM,
    )
    result = compute_consensus(job=job, actor=SYSTEM, method="mv")
    labels = dict(ConsensusLabel.objects.values_list("item__external_id", "value"))
    assert labels == {"i0": "pos", "i1": "neg"}  # the model breaks the tie, and is outvoted where both agree
    assert result.answers == 4
    assert set(ConsensusLabel.objects.values_list("answers_count", flat=True)) == {2}
    assert WorkerJobScore.objects.filter(job=job).count() == 2
    rows = list_active_learning(job, model_name="m", order="disagreement")
    assert [r.external_id for r in rows] == ["i1"] and rows[0].disagrees
    assert [r.external_id for r in list_active_learning(job, model_name="m")] == ["i1", "i0"]
    assert [r["external_id"] for r in iter_retraining_items(job, model_name="m")] == ["i1"]
    [day] = count_disagreements_by_day(job, model_name="m")
    assert (day["answers"], day["disagreeing"]) == (4, 3)


def test_admin_pages_for_predictions(ops_manager, make_worker) -> None:
    job = _job()
    client = Client()
    client.force_login(ops_manager)
    page = client.post(
        f"/admin/tasks/prediction/job/{job.pk}/import/",
        {"model_name": "m1", "file": __import__("io").BytesIO(b"external_id,label,score\ni0,pos,0.3\n")},
    )
    assert page.status_code == 302 and Prediction.objects.count() == 1
    learning = client.get(f"/admin/tasks/prediction/job/{job.pk}/active-learning/")
    assert learning.status_code == 200 and b"i0" in learning.content
    export = client.get(f"/admin/tasks/prediction/job/{job.pk}/retraining.csv?model=m1")
    assert export.status_code == 200
    assert b"".join(export.streaming_content).decode().splitlines()[0] == "external_id,label,confidence,predicted,score"


def test_active_learning_reads_only_the_chosen_models_predictions(make_worker) -> None:
    job = _job(items=2, redundancy=1)
    worker = make_worker()
    for _ in range(2):
        lease = assign_next_hit(job=job, worker=worker)
        submit_assignment(assignment=lease, worker=worker, answers={lease.hit.items.get().pk: "pos"})
    compute_consensus(job=job, actor=SYSTEM, method="mv")
    # Model "a" agrees with the crowd everywhere and is sure; model "b" contradicts it everywhere.
    for name, label in (("a", "pos"), ("b", "neg")):
        text = f"external_id,label,score\ni0,{label},0.9\ni1,{label},0.8\n"
        import_predictions_from_text(job=job, text=text, filename="p.csv", model_name=name, actor=SYSTEM)
    assert list(iter_retraining_items(job, model_name="a")) == []
    assert [r["predicted"] for r in iter_retraining_items(job, model_name="b")] == ["neg", "neg"]
    assert list_active_learning(job, model_name="a", order="disagreement") == []
    assert [r.external_id for r in list_active_learning(job, model_name="b", order="disagreement")] == ["i0", "i1"]
    assert [r.predicted for r in list_active_learning(job, model_name="a")] == ["pos", "pos"]
    [day] = count_disagreements_by_day(job, model_name="a")
    assert (day["answers"], day["disagreeing"]) == (2, 0)
