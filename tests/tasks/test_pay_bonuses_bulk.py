"""``pay_bonuses``: many bonuses at once with exactly the outcomes of ``pay_bonus`` called once per bonus (the
same refusals, ledger rows, reservations, alerts, emails and audit events), in a number of queries that does
not grow with the number of internal-pool bonuses; MTurk bonuses still go out one ``SendBonus`` each."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import pytest
from django.core import mail
from django.db import connection, transaction
from django.db.models import Max
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tasks.models import (
    Assignment,
    BudgetAlert,
    BudgetReservation,
    CostEntry,
    CostKind,
    Job,
    MonthlyBudget,
)
from tasks.services import bonuses_bulk
from tasks.services.bonuses_bulk import BonusOutcome, BonusRequest, pay_bonuses
from tasks.services.budget import BudgetExceeded, month_of, reserve_budget
from tasks.services.errors import ServiceError
from tasks.services.review import pay_bonus, reject_assignment
from tasks.services.review_batch import approve_assignments
from tests.conftest import SYSTEM
from tests.tasks.finance_helpers import submit_work
from workforce.audit import verify_audit_chain
from workforce.models import AuditEvent, Marketplace

pytestmark = pytest.mark.django_db
D = Decimal

Outcome = tuple[Any, ...]


def one_by_one(bonuses: Sequence[BonusRequest], *, stop_at_refusal: bool = False) -> list[Outcome]:
    """The old path: ``pay_bonus`` once per bonus, as the admin action and the fair-pay top-up called it."""
    outcomes: list[Outcome] = []
    for b in bonuses:
        try:
            paid = pay_bonus(
                job=b.job, worker=b.worker, amount=b.amount, reason=b.reason, key=b.key, actor=SYSTEM,
                assignment=b.assignment,
            )  # fmt: skip
        except ServiceError as exc:
            outcomes.append(("refused", type(exc).__name__, str(exc)))
            if stop_at_refusal:
                break
        else:
            outcomes.append(("paid", paid))
    return outcomes


def in_bulk(bonuses: Sequence[BonusRequest]) -> list[Outcome]:
    return [_plain(outcome) for outcome in pay_bonuses(bonuses=bonuses, actor=SYSTEM)]


def _plain(outcome: BonusOutcome) -> Outcome:
    if outcome.error is not None:
        return ("refused", type(outcome.error).__name__, str(outcome.error))
    return ("paid", outcome.paid)


def snapshot(since: int) -> dict[str, Any]:
    """Everything a bonus writes, without ids and times."""
    events = AuditEvent.objects.filter(id__gt=since).order_by("id")
    return {
        "costs": list(
            CostEntry.objects.filter(kind=CostKind.BONUS)
            .order_by("idempotency_key")
            .values_list(
                "idempotency_key",
                "job_id",
                "worker_id",
                "assignment_id",
                "hit_id",
                "marketplace",
                "kind",
                "status",
                "amount",
                "currency",
                "reference",
                "memo",
            )
        ),
        "reservations": list(
            BudgetReservation.objects.order_by("key").values_list("key", "job_id", "amount", "reason", "month")
        ),
        "alerts": list(
            BudgetAlert.objects.order_by("job_id", "threshold").values_list("job_id", "threshold", "spent", "cap")
        ),
        "jobs": list(Job.objects.order_by("pk").values_list("pk", "budget_reserved")),
        "months": list(MonthlyBudget.objects.values_list("currency", "reserved")),
        "events": [
            (e.actor_kind, e.actor_label, e.action, e.object_type, e.object_id, e.before, e.after, e.reason)
            for e in events
        ],
        "chain_intact": verify_audit_chain() is None,
        "mail": [(m.subject, m.body, m.to) for m in mail.outbox],
    }


class _Undo(Exception):
    pass


def rolled_back(run: Callable[[], Any], capture: Any) -> tuple[Any, dict[str, Any]]:
    """``run``'s result and what it wrote (alert emails sent on commit included), then everything undone, so
    the other path starts from the same database."""
    since = AuditEvent.objects.aggregate(last=Max("id"))["last"] or 0
    mail.outbox.clear()
    result: Any = None
    state: dict[str, Any] = {}
    try:
        with transaction.atomic():
            with capture(execute=True):
                result = run()
            state = snapshot(since)
            raise _Undo
    except _Undo:
        pass
    return result, state


@pytest.fixture
def scenario(make_published_job, make_worker, settings) -> list[BonusRequest]:
    """Two jobs (one capped, one not), a monthly cap, a bonus paid before and a reservation left by a bonus that
    never booked; then bonuses that pay, cross the 50 and 80% alerts, hit the job's and the month's caps (a later
    smaller one still fits), repeat or reuse a key, and break each of ``pay_bonus``'s rules."""
    settings.FINANCE_ALERT_EMAILS = ["finance@example.com"]
    capped = make_published_job(items=8, redundancy=1, reward=D("0.05"))
    free = make_published_job(items=3, redundancy=1, reward=D("0.05"))
    first, second, third = make_worker(), make_worker(), make_worker()
    work = [submit_work(capped, w) for w in (first, second, first, second, third, third)]
    approve_assignments(job=capped, actor=SYSTEM, assignment_ids=[a.pk for a in work[:4]])
    rejected = reject_assignment(assignment=work[4], actor=SYSTEM, feedback="Ignores rule 2.")
    on_free = submit_work(free, first)
    pay_bonus(job=free, worker=first, amount=D("0.10"), reason="Early", key="before", actor=SYSTEM)
    reserve_budget(job=free, amount=D("0.10"), key="bonus:left:reserve", actor=SYSTEM, reason="bonus")
    reserved = Job.objects.get(pk=capped.pk).budget_reserved
    Job.objects.filter(pk=capped.pk).update(budget_cap=reserved + D("1.00"))  # spent 0.20 so far
    MonthlyBudget.objects.create(month=month_of(timezone.now()), cap=D("1.50"), currency="USD")
    capped.refresh_from_db()
    pool = make_worker(marketplace=Marketplace.GROUNDTRUTH, user=None)

    def bonus(job: Job, worker: Any, amount: str, key: str, assignment: Assignment | None = None, **kw: Any):
        return BonusRequest(job=job, worker=worker, amount=D(amount), reason=kw.get("reason", "Careful work"),
                            key=key, assignment=assignment)  # fmt: skip

    return [
        bonus(capped, first, "0.30", "k1", work[0]),
        bonus(capped, third, "0.25", "k2", rejected),  # pay_bonus pays on rejected work too
        bonus(capped, second, "0.50", "k3", work[1]),  # above the job's cap
        bonus(capped, second, "0", "k4", work[1]),
        bonus(capped, second, "0.10", "k5", work[1], reason="  "),
        bonus(capped, second, "0.10", "k6", work[0]),  # someone else's assignment
        bonus(capped, first, "0.30", "k1", work[0]),  # the same bonus again: paid once
        bonus(capped, first, "0.35", "k1", work[0]),  # the same key for another amount
        bonus(capped, second, "0.40", "k7", work[3]),  # fits: crosses 80%
        bonus(free, first, "0.30", "k8", on_free),
        bonus(free, second, "0.30", "k8"),  # the same key for another worker
        bonus(free, first, "0.30", "k9"),  # above the month's cap
        bonus(free, first, "0.25", "k10"),  # fills the month's cap exactly
        bonus(free, first, "0.10", "before", on_free),  # paid before the run
        bonus(free, first, "0.20", "left"),  # reserved before for another amount
        bonus(free, first, "0.10", "left"),  # reserved before, never booked
        bonus(free, pool, "0.10", "k11"),  # not an internal-pool worker
        bonus(Job.objects.get(pk=capped.pk), first, "Infinity", "k12"),
    ]


def test_it_gives_each_bonus_the_outcome_pay_bonus_gives_it_one_by_one(
    scenario, django_capture_on_commit_callbacks
) -> None:
    def twice(pay: Callable[[Sequence[BonusRequest]], list[Outcome]]) -> tuple[list[Outcome], list[Outcome]]:
        return pay(scenario), pay(scenario)

    (old_first, old_again), old_state = rolled_back(lambda: twice(one_by_one), django_capture_on_commit_callbacks)
    (new_first, new_again), new_state = rolled_back(lambda: twice(in_bulk), django_capture_on_commit_callbacks)

    assert new_first == old_first
    assert new_again == old_again
    assert new_state == old_state
    # and what that is:
    assert [o[1] for o in new_first] == [
        True, True, "BudgetExceeded", "ServiceError", "ServiceError", "ServiceError", False, "ServiceError",
        True, True, "ServiceError", "BudgetExceeded", True, False, "ReservationConflict", "ServiceError",
        "ServiceError", "ServiceError",
    ]  # fmt: skip
    assert "budget cap" in new_first[2][2] and "monthly cap" in new_first[11][2]
    assert new_first[16][2] == "Bonuses on SageMaker Ground Truth are not supported."
    assert all(o == ("paid", False) for o in new_again if o[0] == "paid")  # a second run pays nothing again
    paid = {key: amount for key, *_, amount, _cur, _ref, _memo in new_state["costs"]}
    assert paid == {
        "bonus:before": D("0.10"), "bonus:k1": D("0.30"), "bonus:k2": D("0.25"), "bonus:k7": D("0.40"),
        "bonus:k8": D("0.30"), "bonus:k10": D("0.25"),
    }  # fmt: skip
    assert [row[1] for row in new_state["alerts"]] == [50, 80]
    assert len(new_state["mail"]) == 2 and new_state["chain_intact"]
    assert new_state["months"] == [("USD", D("1.50"))]
    actions = [e[2] for e in new_state["events"] if e[2].startswith(("bonus", "budget"))]
    assert actions == [
        "budget.reserved", "bonus.paid", "budget.reserved", "bonus.paid", "budget.alert",
        "budget.reserved", "bonus.paid", "budget.alert", "budget.reserved", "bonus.paid",
        "budget.reserved", "bonus.paid",
    ]  # fmt: skip


def test_stopping_at_a_refusal_commits_the_bonuses_before_it_as_a_loop_of_pay_bonus_does(
    scenario, django_capture_on_commit_callbacks
) -> None:
    def bulk() -> list[Outcome]:
        try:
            pay_bonuses(bonuses=scenario, actor=SYSTEM, stop_at_refusal=True)
        except BudgetExceeded as exc:
            return [("raised", str(exc))]
        return []

    old, old_state = rolled_back(lambda: one_by_one(scenario, stop_at_refusal=True), django_capture_on_commit_callbacks)
    new, new_state = rolled_back(bulk, django_capture_on_commit_callbacks)
    assert old[-1][0] == "refused" and new == [("raised", old[-1][2])]
    assert new_state == old_state
    assert [row[0] for row in new_state["costs"]] == ["bonus:before", "bonus:k1", "bonus:k2"]


def test_a_concurrent_reservation_sends_the_run_through_pay_bonus_one_at_a_time(
    make_published_job, make_worker, monkeypatch
) -> None:
    job = make_published_job(items=3, redundancy=1)
    worker = make_worker()
    work = [submit_work(job, worker) for _ in range(3)]
    month = MonthlyBudget.objects.create(month=month_of(timezone.now()), cap=D("5.00"), currency="USD")
    read, calls = bonuses_bulk._read, []

    def read_then_someone_reserves(bonuses: Any) -> Any:
        run = read(bonuses)
        MonthlyBudget.objects.filter(pk=month.pk).update(reserved=D("4.90"))  # the run no longer fits
        return run

    def counted_pay_bonus(**kwargs: Any) -> bool:
        calls.append(kwargs["key"])
        return pay_bonus(**kwargs)

    monkeypatch.setattr(bonuses_bulk, "_read", read_then_someone_reserves)
    monkeypatch.setattr(bonuses_bulk, "pay_bonus", counted_pay_bonus)
    bonuses = [BonusRequest(job=job, worker=worker, amount=D("0.50"), reason="Good", key=f"r{a.pk}", assignment=a)
               for a in work]  # fmt: skip
    outcomes = pay_bonuses(bonuses=bonuses, actor=SYSTEM)
    assert calls == [b.key for b in bonuses]  # rolled back, then decided one at a time
    assert all(o.paid and o.error is None for o in outcomes)
    assert CostEntry.objects.filter(kind=CostKind.BONUS).count() == 3
    assert BudgetReservation.objects.filter(key__endswith=":reserve", reason="bonus").count() == 3
    assert MonthlyBudget.objects.get().reserved == D("1.50")  # (the simulated reservation was rolled back too)


def test_mturk_bonuses_still_go_out_one_send_bonus_each_once_per_key(
    mturk, standin, make_published_job, make_worker
) -> None:
    from tasks.models import MTurkBonus
    from tests.tasks.services.mturk_helpers import submitted_mturk_assignments

    remote = submitted_mturk_assignments(mturk, standin, workers=2)
    job = make_published_job(items=1, redundancy=1)
    local = submit_work(job, make_worker())
    bonuses = [
        BonusRequest(job=a.job, worker=a.worker, amount=D("0.30"), reason="Good", key=f"m{a.pk}", assignment=a)
        for a in (remote[0], local, remote[1])
    ]
    assert [o.paid for o in pay_bonuses(bonuses=bonuses, actor=SYSTEM)] == [True, True, True]
    assert [o.paid for o in pay_bonuses(bonuses=bonuses, actor=SYSTEM)] == [False, False, False]
    assert standin.state.calls.get("SendBonus") == 2 and len(standin.state.bonuses) == 2
    assert MTurkBonus.objects.count() == 2
    assert CostEntry.objects.filter(kind=CostKind.BONUS, marketplace=Marketplace.INTERNAL).count() == 1


# Queries --------------------------------------------------------------------------------------------------------


@pytest.fixture
def many_submitted(make_published_job, make_worker) -> list[Assignment]:
    """55 submitted internal-pool assignments of one capped job, by five workers."""
    job = make_published_job(items=55, redundancy=1, reward=D("0.05"))
    Job.objects.filter(pk=job.pk).update(budget_cap=D("1000"))
    workers = [make_worker() for _ in range(5)]
    return [submit_work(job, workers[n % 5]) for n in range(55)]


def _queries(run: Callable[[], Any]) -> int:
    with CaptureQueriesContext(connection) as queries:
        run()
    return len(queries.captured_queries)


def test_the_number_of_queries_does_not_grow_with_the_number_of_bonuses(many_submitted) -> None:
    def bonuses(assignments: list[Assignment], prefix: str) -> list[BonusRequest]:
        picked = Assignment.objects.select_related("job", "worker").filter(pk__in=[a.pk for a in assignments])
        return [BonusRequest(job=a.job, worker=a.worker, amount=D("0.20"), reason="Good", key=f"{prefix}{a.pk}",
                             assignment=a) for a in picked.order_by("pk")]  # fmt: skip

    five, fifty = bonuses(many_submitted[:5], "q"), bonuses(many_submitted[5:], "q")
    old_five = _queries(lambda: one_by_one(bonuses(many_submitted[:5], "old")))
    for_five = _queries(lambda: pay_bonuses(bonuses=five, actor=SYSTEM))
    for_fifty = _queries(lambda: pay_bonuses(bonuses=fifty, actor=SYSTEM))
    assert for_fifty <= for_five + 2
    assert for_fifty < old_five  # the one-by-one path spends more on five bonuses than this on fifty
    assert CostEntry.objects.filter(kind=CostKind.BONUS).count() == 60


def test_the_admin_action_pays_fifty_bonuses_in_about_the_queries_of_five(reviewer, many_submitted) -> None:
    client = Client()
    client.force_login(reviewer)
    url = reverse("admin:tasks_assignment_changelist")

    def post(assignments: list[Assignment], nonce: str) -> None:
        data = {"action": "bonus_selected", "_selected_action": [a.pk for a in assignments], "apply": "1",
                "amount": "0.20", "reason": "Careful work", "nonce": nonce}  # fmt: skip
        assert client.post(url, data).status_code == 302

    client.get(url)  # the session and the admin's caches are warm for both
    for_five = _queries(lambda: post(many_submitted[:5], "7f1d2b8e-0c55-4d3a-9a57-3c1c2d9e8b10"))
    for_fifty = _queries(lambda: post(many_submitted[5:], "11111111-2222-3333-4444-555555555555"))
    assert for_fifty <= for_five + 2
    assert CostEntry.objects.filter(kind=CostKind.BONUS).count() == 55
    assert AuditEvent.objects.filter(action="bonus.paid").count() == 55


# PostgreSQL: concurrent calls ------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL; set DATABASE_URL=postgres://...")
@pytest.mark.django_db(transaction=True)
def test_a_form_sent_three_times_at_once_and_bonuses_paid_meanwhile_pay_once_within_the_caps(
    make_published_job, make_worker
) -> None:
    import threading

    from django.db import connections
    from django.db.models import Sum

    job = make_published_job(items=10, redundancy=1, reward=D("0.05"))
    workers = [make_worker() for _ in range(3)]
    work = [submit_work(job, workers[n % 3]) for n in range(10)]
    Job.objects.filter(pk=job.pk).update(budget_cap=Job.objects.get(pk=job.pk).budget_reserved + D("2.00"))
    month = MonthlyBudget.objects.create(month=month_of(timezone.now()), cap=D("2.50"), currency="USD")
    job.refresh_from_db()
    form = [BonusRequest(job=job, worker=a.worker, amount=D("0.15"), reason="Good", key=f"form:{a.pk}", assignment=a)
            for a in work]  # fmt: skip
    barrier = threading.Barrier(5)
    errors: list[BaseException] = []
    refused: list[str] = []

    def submit_form() -> None:
        try:
            barrier.wait()
            refused.extend(str(o.error) for o in pay_bonuses(bonuses=form, actor=SYSTEM) if o.error is not None)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    def single_bonuses(n: int) -> None:
        try:
            barrier.wait()
            for a in work:
                try:
                    pay_bonus(job=job, worker=a.worker, amount=D("0.10"), reason="Streak", key=f"api{n}:{a.pk}",
                              actor=SYSTEM, assignment=a)  # fmt: skip
                except BudgetExceeded as exc:
                    refused.append(str(exc))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit_form) for _ in range(3)]
    threads += [threading.Thread(target=single_bonuses, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors

    job.refresh_from_db()
    month.refresh_from_db()
    bonuses = CostEntry.objects.filter(kind=CostKind.BONUS)
    keys = list(bonuses.values_list("idempotency_key", flat=True))
    assert len(keys) == len(set(keys))  # each key paid once
    assert bonuses.filter(idempotency_key__startswith="bonus:form:").count() <= len(form)
    assert refused  # the caps cut some off: 1.50 + 2 x 1.00 asked, 2.00 (job) and 2.50 (month) allowed
    assert job.budget_reserved <= job.budget_cap and month.reserved <= month.cap
    reservations = BudgetReservation.objects.filter(key__startswith="bonus:")
    assert sorted(reservations.values_list("key", flat=True)) == sorted(f"{key}:reserve" for key in keys)
    assert month.reserved == reservations.aggregate(s=Sum("amount"))["s"]
    assert job.budget_reserved == BudgetReservation.objects.filter(job=job).aggregate(s=Sum("amount"))["s"]
    assert AuditEvent.objects.filter(action="bonus.paid").count() == len(keys)
    assert verify_audit_chain() is None
