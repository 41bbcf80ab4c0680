"""Two transactions that lock the same Job and Hit rows on PostgreSQL, one on each thread, never deadlock: every
path locks a job's rows in one order (its assignments, then its Hits in id order, then the job row).

Each test makes the bad interleaving happen on purpose, not by timing luck: the first transaction stops at a
hook while it holds its Hit (or, with the old order, its job) locked; the second one is started and the test
waits until PostgreSQL reports it waiting for a lock (or finished); only then does the first go on. With two
paths taking the rows in opposite orders that is a lock cycle, and PostgreSQL aborts one of them with
"deadlock detected"."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.db import connection, connections
from django.db.models import F

from tasks.models import Assignment, AssignmentState, Hit, HitState, Item, Job, JobState
from tasks.services import adaptive, collection, more_answers, mturk_review, publishing
from tasks.services.collection import submit_assignment
from tasks.services.mturk_hits import extend_mturk_hits_within_budget
from tasks.services.mturk_review import approve_mturk_assignment
from tasks.services.pool import assign_next_hit
from tests.conftest import SYSTEM
from tests.tasks.services.mturk_helpers import submitted_mturk_assignments
from tests.tasks.services.test_adaptive import _publish, _run_crowd
from workforce.marketplaces.mturk import MTurkMarketplace
from workforce.models import Worker

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not settings.IS_POSTGRES, reason="needs PostgreSQL; set DATABASE_URL=postgres://..."),
    pytest.mark.django_db(transaction=True),
]
WAIT = 15.0  # seconds: far above PostgreSQL's deadlock_timeout (1s by default)


class Race:
    """Service calls on their own threads (each with its own connection), their errors and results by name."""

    def __init__(self) -> None:
        self.errors: dict[str, BaseException] = {}
        self.results: dict[str, Any] = {}
        self._pids: dict[str, int] = {}
        self._threads: dict[str, threading.Thread] = {}

    def start(self, name: str, call: Callable[[], Any]) -> None:
        def run() -> None:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    self._pids[name] = cursor.fetchone()[0]
                self.results[name] = call()
            except BaseException as exc:
                self.errors[name] = exc
            finally:
                connections.close_all()

        self._threads[name] = threading.Thread(target=run, name=name, daemon=True)
        self._threads[name].start()

    def wait_until_blocked_or_done(self, name: str) -> None:
        """Until ``name``'s transaction waits for a lock another transaction holds, or its call has returned."""
        deadline = time.monotonic() + WAIT
        thread = self._threads[name]
        while thread.is_alive():
            pid = self._pids.get(name)
            if pid is not None:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
                    row = cursor.fetchone()
                if row is not None and row[0] == "Lock":
                    return
            assert time.monotonic() < deadline, f"{name} neither waited for a lock nor finished"
            time.sleep(0.01)

    def join(self) -> None:
        for thread in self._threads.values():
            thread.join(2 * WAIT)
        assert not any(thread.is_alive() for thread in self._threads.values()), "a thread is still running"


@contextmanager
def paused_before(module: Any, name: str) -> Iterator[tuple[threading.Event, threading.Event]]:
    """Patch ``module.name`` so that a call to it first sets ``reached`` and waits for ``go``: the caller's
    transaction stops there with the locks it holds."""
    reached, go = threading.Event(), threading.Event()
    original = getattr(module, name)

    def pause(*args: Any, **kwargs: Any) -> Any:
        reached.set()
        go.wait(WAIT)
        return original(*args, **kwargs)

    with mock.patch.object(module, name, pause):
        yield reached, go


@contextmanager
def paused_after(module: Any, name: str) -> Iterator[tuple[threading.Event, threading.Event]]:
    """As ``paused_before``, once the call has returned."""
    reached, go = threading.Event(), threading.Event()
    original = getattr(module, name)

    def pause(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        reached.set()
        go.wait(WAIT)
        return result

    with mock.patch.object(module, name, pause):
        yield reached, go


def _first_runs_then_second(
    race: Race,
    pause: tuple[threading.Event, threading.Event],
    first: tuple[str, Callable[[], Any]],
    second: tuple[str, Callable[[], Any]],
) -> None:
    """``first`` runs until its pause; ``second`` runs until it waits for a lock (or ends); ``first`` goes on."""
    reached, go = pause
    race.start(*first)
    assert reached.wait(WAIT), f"{first[0]} never reached its pause"
    race.start(*second)
    race.wait_until_blocked_or_done(second[0])
    go.set()
    race.join()


def _leased_hit(make_published_job: Callable[..., Job], make_worker: Callable[..., Worker]) -> tuple[Job, Assignment]:
    """A running job of two one-answer Hits, the first one leased to a worker (their answer will complete it)."""
    job = make_published_job(items=2, redundancy=1)
    lease = assign_next_hit(job=job, worker=make_worker())
    return job, lease


def _last_answer(lease: Assignment) -> Callable[[], Any]:
    item = lease.hit.items.get()
    return lambda: submit_assignment(assignment=lease, worker=lease.worker, answers={item.pk: "pos"})


@pytest.mark.parametrize(
    "holding",
    [
        pytest.param("_record", id="the-submit-holds-its-assignment"),
        pytest.param("complete_job_if_done", id="the-submit-holds-its-assignment-and-hit"),
    ],
)
def test_a_cancel_while_a_worker_submits_the_last_answer_of_a_hit_does_not_deadlock(
    make_published_job: Callable[..., Job], make_worker: Callable[..., Worker], holding: str
) -> None:
    """The submit has locked its assignment (and, at the second pause, counted the answer on its Hit: it is about
    to lock the job's row to complete the job) when the cancel starts."""
    job, lease = _leased_hit(make_published_job, make_worker)
    race = Race()
    with paused_before(collection, holding) as pause:
        _first_runs_then_second(
            race,
            pause,
            ("submit", _last_answer(lease)),
            ("cancel", lambda: publishing.cancel_job(job=Job.objects.get(pk=job.pk), actor=SYSTEM)),
        )
    assert race.errors == {}
    assert Job.objects.get(pk=job.pk).state == JobState.CANCELLED
    states = dict(Hit.objects.filter(job=job).values_list("pk", "state"))
    assert states.pop(lease.hit_id) == HitState.COMPLETE  # the answer counts; the other Hit is cancelled
    assert set(states.values()) == {HitState.CANCELLED}
    assert Assignment.objects.get(pk=lease.pk).state == AssignmentState.SUBMITTED


def test_more_answers_asked_while_a_worker_submits_the_last_answer_of_a_hit_do_not_deadlock(
    make_published_job: Callable[..., Job], make_worker: Callable[..., Worker]
) -> None:
    job, lease = _leased_hit(make_published_job, make_worker)
    race = Race()
    with paused_before(collection, "complete_job_if_done") as pause:
        _first_runs_then_second(
            race,
            pause,
            ("submit", _last_answer(lease)),
            ("more", lambda: more_answers.request_more_answers(job=Job.objects.get(pk=job.pk), actor=SYSTEM)),
        )
    assert race.errors == {}
    assert race.results["more"].hits == 2
    hits = Hit.objects.filter(job=job)
    assert set(hits.values_list("state", "assignments_wanted")) == {(HitState.OPEN, 2)}
    assert Hit.objects.get(pk=lease.hit_id).assignments_submitted == 1


def _adaptive_job_with_a_split_item(make_worker: Callable[..., Worker]) -> tuple[Job, Hit]:
    """A running adaptive job (2 to 5 answers an item) whose two Hits are complete with two answers each; the
    second item's answers disagree, so an allocation pass gives its Hit one more (the budget has room)."""
    job = _publish(0, 2)
    Job.objects.filter(pk=job.pk).update(budget_cap=F("budget_reserved"))  # no extra answer while the crowd works
    split = Item.objects.filter(job=job).order_by("external_id")[1]
    _run_crowd(job, [make_worker() for _ in range(2)], answer=lambda item, i: "neg" if item == split and i else "pos")
    assert set(Hit.objects.filter(job=job).values_list("state", flat=True)) == {HitState.COMPLETE}
    Job.objects.filter(pk=job.pk).update(state=JobState.PUBLISHED, completed_at=None, budget_cap=Decimal("10.00"))
    return Job.objects.get(pk=job.pk), Hit.objects.get(hit_items__item=split)


def _allocation_pass(job: Job) -> Callable[[], int]:
    return lambda: adaptive.allocate_adaptive_answers(job=job)


def test_an_allocation_pass_and_an_ops_request_for_more_answers_on_the_same_hits_do_not_deadlock(
    make_worker: Callable[..., Worker],
) -> None:
    """The request has chosen its Hits (holding the job's row, with the old order) when the pass starts; the
    pass locks the split item's Hit and then wants the job's row; the request then wants that Hit."""
    job, split = _adaptive_job_with_a_split_item(make_worker)
    race = Race()
    with paused_after(more_answers, "_chosen_hits") as pause:
        _first_runs_then_second(
            race,
            pause,
            ("more", lambda: more_answers.request_more_answers(job=job, actor=SYSTEM)),
            ("pass", _allocation_pass(job)),
        )
    assert race.errors == {}
    assert (race.results["pass"], race.results["more"].hits) == (1, 2)
    wanted = dict(Hit.objects.filter(job=job).values_list("pk", "assignments_wanted"))
    assert wanted.pop(split.pk) == 4 and list(wanted.values()) == [3]  # one more from the pass, one from the request
    assert set(Hit.objects.filter(job=job).values_list("state", flat=True)) == {HitState.OPEN}


def test_a_cancel_waiting_for_an_allocation_pass_cancels_the_hit_the_pass_reopened(
    make_worker: Callable[..., Worker],
) -> None:
    job, split = _adaptive_job_with_a_split_item(make_worker)
    race = Race()
    with paused_before(adaptive, "reserve_budget") as pause:  # the pass holds the Hit and the job's row
        _first_runs_then_second(
            race,
            pause,
            ("pass", _allocation_pass(job)),
            ("cancel", lambda: publishing.cancel_job(job=Job.objects.get(pk=job.pk), actor=SYSTEM)),
        )
    assert race.errors == {}
    assert race.results["pass"] == 1
    assert Job.objects.get(pk=job.pk).state == JobState.CANCELLED
    assert Hit.objects.get(pk=split.pk).state == HitState.CANCELLED  # reopened by the pass, then cancelled
    assert not Hit.objects.filter(job=job, state__in=[HitState.OPEN, HitState.FULL]).exists()


def test_an_allocation_pass_waiting_for_a_cancel_reopens_nothing_and_reserves_nothing(
    make_worker: Callable[..., Worker],
) -> None:
    job, split = _adaptive_job_with_a_split_item(make_worker)
    race = Race()
    with paused_before(publishing, "settle_job_budget") as pause:  # the cancel holds everything it locks
        _first_runs_then_second(
            race,
            pause,
            ("cancel", lambda: publishing.cancel_job(job=Job.objects.get(pk=job.pk), actor=SYSTEM)),
            ("pass", _allocation_pass(job)),
        )
    assert race.errors == {}
    assert race.results["pass"] == 0
    cancelled = race.results["cancel"]
    assert Job.objects.get(pk=job.pk).budget_reserved == cancelled.budget_reserved  # what the cancel left held
    assert Hit.objects.get(pk=split.pk).state == HitState.COMPLETE
    assert Hit.objects.get(pk=split.pk).assignments_wanted == 2


def test_an_mturk_extension_while_an_approval_settles_a_slot_of_the_same_hit_does_not_deadlock(
    mturk: MTurkMarketplace, standin: Any
) -> None:
    """The approval holds the HIT's row (it settles one of its slots) and is about to lock the job's row (the
    budget's true-up) when an extension of the same HIT starts."""
    (assignment,) = submitted_mturk_assignments(mturk, standin, workers=1)
    job, hit = assignment.job, assignment.hit
    race = Race()
    with paused_before(mturk_review, "after_review") as pause:
        _first_runs_then_second(
            race,
            pause,
            ("approve", lambda: approve_mturk_assignment(assignment=assignment, actor=SYSTEM, connector=mturk)),
            (
                "extend",
                lambda: extend_mturk_hits_within_budget(
                    job=job, hits=[hit], extra=1, actor=SYSTEM, key="more", reason="more", connector=mturk
                ),
            ),
        )
    assert race.errors == {}
    assert race.results["extend"].extended == 1
    assert Assignment.objects.get(pk=assignment.pk).state == AssignmentState.APPROVED
    assert Hit.objects.get(pk=hit.pk).assignments_wanted == 4
