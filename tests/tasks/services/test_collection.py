from __future__ import annotations

from datetime import timedelta

import pytest

from tasks.models import Answer, Assignment, AssignmentState, Hit, HitState, JobState, TaskKind
from tasks.services.collection import submit_assignment
from tasks.services.errors import SubmissionRefused
from tasks.services.pool import assign_next_hit

pytestmark = pytest.mark.django_db


def _items(a):
    return list(a.hit.items.order_by("hit_items__position").values_list("id", flat=True))


def test_submitting_stores_one_answer_per_item_and_counts_it(make_published_job, make_worker):
    job = make_published_job(items=4, items_per_hit=2, redundancy=2)
    worker = make_worker()
    a = assign_next_hit(job=job, worker=worker)
    first, second = _items(a)
    submit_assignment(assignment=a, worker=worker, answers={first: "pos", second: "neg"})
    a.refresh_from_db()
    assert a.state == AssignmentState.SUBMITTED and a.submitted_at is not None
    stored = dict(Answer.objects.filter(assignment=a).values_list("item_id", "value"))
    assert stored == {first: "pos", second: "neg"}
    assert set(Answer.objects.filter(assignment=a).values_list("job_id", "worker_id")) == {(job.pk, worker.pk)}
    assert Hit.objects.get(pk=a.hit_id).assignments_submitted == 1


@pytest.mark.parametrize(
    ("answers", "message"),
    [({}, "Answer every item"), ("unknown", "Choose one of"), (["pos"], "Choose one of")],
)
def test_bad_answers_are_refused_and_nothing_is_stored(make_published_job, make_worker, answers, message):
    job = make_published_job(items=1)
    worker = make_worker()
    a = assign_next_hit(job=job, worker=worker)
    payload = {} if answers == {} else {_items(a)[0]: answers}
    with pytest.raises(SubmissionRefused, match=message):
        submit_assignment(assignment=a, worker=worker, answers=payload)
    assert not Answer.objects.exists()
    a.refresh_from_db()
    assert a.state == AssignmentState.ACCEPTED
    assert Hit.objects.get(pk=a.hit_id).assignments_submitted == 0


def test_answers_for_items_outside_the_task_are_refused(make_published_job, make_worker):
    job = make_published_job(items=2)
    worker = make_worker()
    a = assign_next_hit(job=job, worker=worker)
    other_item = job.items.exclude(pk=_items(a)[0]).get()
    with pytest.raises(SubmissionRefused, match="not part of this task"):
        submit_assignment(assignment=a, worker=worker, answers={_items(a)[0]: "pos", other_item.pk: "neg"})


def test_multilabel_answers_are_lists_in_label_order(make_published_job, make_worker):
    job = make_published_job(items=1, task_kind=TaskKind.TEXT_MULTILABEL, labels=["a", "b", "c"])
    worker = make_worker()
    a = assign_next_hit(job=job, worker=worker)
    item = _items(a)[0]
    with pytest.raises(SubmissionRefused, match="Unknown label"):
        submit_assignment(assignment=a, worker=worker, answers={item: ["c", "z"]})
    submit_assignment(assignment=a, worker=worker, answers={item: ["c", "a"]})
    assert Answer.objects.get(assignment=a).value == ["a", "c"]


def test_an_expired_lease_is_not_accepted_and_returns_to_the_pool(make_published_job, make_worker):
    job = make_published_job(items=1, redundancy=1)
    worker = make_worker()
    a = assign_next_hit(job=job, worker=worker)
    late = a.lease_expires_at + timedelta(seconds=1)
    with pytest.raises(SubmissionRefused, match="ran out"):
        submit_assignment(assignment=a, worker=worker, answers={_items(a)[0]: "pos"}, now=late)
    a.refresh_from_db()
    assert a.state == AssignmentState.EXPIRED
    assert not Answer.objects.exists()
    hit = Hit.objects.get(pk=a.hit_id)
    assert (hit.state, hit.slots_taken, hit.assignments_submitted) == (HitState.OPEN, 0, 0)


def test_a_task_cannot_be_submitted_twice_or_by_someone_else(make_published_job, make_worker):
    job = make_published_job(items=2)
    worker, intruder = make_worker(), make_worker()
    a = assign_next_hit(job=job, worker=worker)
    answers = {_items(a)[0]: "pos"}
    with pytest.raises(SubmissionRefused, match="not yours"):
        submit_assignment(assignment=a, worker=intruder, answers=answers)
    submit_assignment(assignment=a, worker=worker, answers=answers)
    with pytest.raises(SubmissionRefused, match="already submitted"):
        submit_assignment(assignment=a, worker=worker, answers=answers)
    assert Answer.objects.count() == 1


def test_the_last_answer_completes_the_hit_and_then_the_job(make_published_job, make_worker):
    job = make_published_job(items=2, redundancy=2)
    workers = [make_worker(), make_worker()]
    for worker in workers:
        for _ in range(2):
            a = assign_next_hit(job=job, worker=worker)
            submit_assignment(assignment=a, worker=worker, answers={_items(a)[0]: "neg"})
    assert set(Hit.objects.filter(job=job).values_list("state", flat=True)) == {HitState.COMPLETE}
    job.refresh_from_db()
    assert job.state == JobState.COMPLETED and job.completed_at is not None
    assert Assignment.objects.filter(job=job, state=AssignmentState.SUBMITTED).count() == 4
