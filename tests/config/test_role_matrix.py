"""Every surface against every role: admin pages, custom admin views, API endpoints and worker pages.

The surfaces are generated from the admin registry and the URL resolver, so a new model admin, admin
view or URL is tried automatically; one that is not classified in the tables below fails
``test_every_surface_is_classified`` until someone decides who may use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.authtoken.models import Token

from qualification.services import grant_qualification, start_attempt
from tasks.models import (
    BudgetAlert,
    ConsensusLabel,
    CostKind,
    GroundTruthLabel,
    Hit,
    Job,
    LabelingJob,
    MTurkBonus,
    MTurkPageSubmission,
    Prediction,
    WorkerJobScore,
)
from tasks.roles import CROWD_WORKER, FINANCE, OPS_MANAGER, REVIEWER
from tasks.services.budget import set_monthly_cap
from tasks.services.exports import create_dataset_version, request_label_export
from tasks.services.ledger import record_cost
from tasks.services.pool import assign_next_hit
from tasks.services.quality import block_worker
from tests.conftest import SYSTEM
from tests.factories import UserFactory, WorkerFactory
from tests.qualification.conftest import OPS, sentiment_questions
from tests.tasks.services.mturk_helpers import published_mturk_job
from workforce.invitations import invite_workers
from workforce.marketplaces.mturk import MTurkMarketplace

pytestmark = pytest.mark.django_db

ANON, CROWD, REV, FIN, OPSM, ADM = "anonymous", "crowd worker", "reviewer", "finance", "ops manager", "admin"
ROLES = (ANON, CROWD, REV, FIN, OPSM, ADM)
STAFF = frozenset({REV, FIN, OPSM, ADM})
NOBODY: frozenset[str] = frozenset()


def _r(*roles: str) -> frozenset[str]:
    return frozenset(roles)


# model -> (who may open its list, change page and history; who may open "add"; who may open "delete")
ADMIN_MODELS: dict[str, tuple[frozenset[str], frozenset[str], frozenset[str]]] = {
    "auth.group": (_r(ADM), _r(ADM), _r(ADM)),
    "auth.user": (_r(ADM), _r(ADM), _r(ADM)),
    "authtoken.tokenproxy": (_r(ADM), _r(ADM), _r(ADM)),
    "workforce.worker": (_r(OPSM, REV, FIN, ADM), NOBODY, NOBODY),  # finance pays workers: it sees who they are
    "workforce.auditevent": (_r(OPSM, FIN, ADM), NOBODY, NOBODY),
    "workforce.invitation": (_r(OPSM, ADM), _r(OPSM, ADM), NOBODY),
    "qualification.qualificationtest": (_r(OPSM, ADM), _r(OPSM, ADM), NOBODY),
    "qualification.attempt": (_r(OPSM, ADM), NOBODY, NOBODY),
    "qualification.grant": (_r(OPSM, ADM), NOBODY, NOBODY),
    "tasks.job": (_r(OPSM, REV, FIN, ADM), _r(OPSM, ADM), NOBODY),
    "tasks.item": (_r(OPSM, REV, ADM), NOBODY, NOBODY),
    "tasks.hit": (_r(OPSM, REV, ADM), NOBODY, NOBODY),
    "tasks.assignment": (_r(OPSM, REV, FIN, ADM), NOBODY, NOBODY),  # finance reconciles what was paid
    "tasks.consensuslabel": (_r(OPSM, REV, ADM), NOBODY, NOBODY),
    "tasks.workerjobscore": (_r(OPSM, REV, ADM), NOBODY, NOBODY),  # a reviewer weighs a worker's record
    "tasks.jobblock": (_r(OPSM, ADM), NOBODY, NOBODY),
    "tasks.assignmentflag": (_r(OPSM, REV, ADM), NOBODY, NOBODY),
    # The ledger and budgets: finance and ops read them; only ops set monthly caps; nobody deletes.
    "tasks.costentry": (_r(OPSM, FIN, ADM), NOBODY, NOBODY),
    "tasks.budgetreservation": (_r(OPSM, FIN, ADM), NOBODY, NOBODY),
    "tasks.budgetalert": (_r(OPSM, FIN, ADM), NOBODY, NOBODY),
    "tasks.monthlybudget": (_r(OPSM, FIN, ADM), _r(OPSM, ADM), NOBODY),
    # Model predictions and Ground Truth runs are part of running a job: ops managers only.
    "tasks.prediction": (_r(OPSM, ADM), NOBODY, NOBODY),
    "tasks.labelingjob": (_r(OPSM, ADM), _r(OPSM, ADM), NOBODY),
    "tasks.groundtruthlabel": (_r(OPSM, ADM), NOBODY, NOBODY),
    # What was posted on the public MTurk page (claims until MTurk lists them): ops managers watch for forgeries.
    "tasks.mturkpagesubmission": (_r(OPSM, ADM), NOBODY, NOBODY),
    "tasks.mturkbonus": (_r(OPSM, ADM), NOBODY, NOBODY),
}

# model -> action -> who is offered it on the change list (and so may run it: Django refuses any other).
ADMIN_ACTIONS: dict[str, dict[str, frozenset[str]]] = {
    "auth.group": {"delete_selected": _r(ADM)},
    "auth.user": {"delete_selected": _r(ADM)},
    "qualification.qualificationtest": {"make_new_version": _r(OPSM, ADM)},
    "qualification.grant": {"revoke": _r(OPSM, ADM)},
    "workforce.worker": {"invite_to_pool": _r(OPSM, ADM)},
    "workforce.invitation": {"revoke_selected": _r(OPSM, ADM)},
    "tasks.job": {
        action: _r(OPSM, ADM)
        for action in (
            "publish_selected",
            "pause_selected",
            "resume_selected",
            "cancel_selected",
            "recompute_consensus",
            "request_one_more_answer",
            "request_more_where_unsure",
            "clone_selected",
            "export_csv",
            "export_jsonl",
            "top_up_fair_pay_selected",
            "approve_passing_gold",
        )
    },
    "tasks.assignment": {
        "approve_selected": _r(REV, ADM),
        "reject_selected": _r(REV, ADM),
        "bonus_selected": _r(REV, ADM),
    },
    "tasks.consensuslabel": {"promote_to_gold": _r(OPSM, ADM)},
    "tasks.jobblock": {"lift_selected": _r(OPSM, ADM)},
    "tasks.mturkbonus": {"resend_flagged": _r(OPSM, ADM)},
    "tasks.labelingjob": {"stop_selected": _r(OPSM, ADM), "refresh_selected": _r(OPSM, ADM)},
}

# Admin app pages: an app's index exists only for users who may see one of its models.
ADMIN_APPS = {
    "auth": _r(ADM),
    "authtoken": _r(ADM),
    "workforce": _r(OPSM, REV, FIN, ADM),
    "qualification": _r(OPSM, ADM),
    "tasks": _r(OPSM, REV, FIN, ADM),
}


@dataclass(frozen=True)
class Surface:
    """One non-model URL: how to call it and who may; ``None`` roles = public (login, logout)."""

    method: str
    # which object fills the URL: "", "job", "assignment", "layout_assignment", "test", "attempt", "user",
    # "view_on_site", "export" (job and finished export), "version" (job and number), "finance_export",
    # "job_state" (job and a state verb)
    args: str
    roles: frozenset[str] | None
    query: str = ""  # appended to the URL (a GET query, e.g. the older version of a diff)


# Every other URL name in the project (admin site pages and custom admin views included).
SURFACES: dict[str, Surface] = {
    "admin:index": Surface("get", "", STAFF),
    "admin:login": Surface("get", "", None),
    "admin:logout": Surface("post", "", None),
    "admin:password_change": Surface("get", "", STAFF),
    "admin:password_change_done": Surface("get", "", STAFF),
    "admin:jsi18n": Surface("get", "", STAFF),
    # Without a model field in the query, Django refuses everyone; with one it checks that model's admin.
    "admin:autocomplete": Surface("get", "", NOBODY),
    # No model defines get_absolute_url, so "view on site" leads nowhere for anyone.
    "admin:view_on_site": Surface("get", "view_on_site", NOBODY),
    "admin:tasks_job_import": Surface("get", "job", _r(OPSM, ADM)),
    "admin:auth_user_password_change": Surface("get", "user", _r(ADM)),
    "admin:tasks_job_export_download": Surface("get", "export", _r(OPSM, ADM)),
    "admin:tasks_finance_dashboard": Surface("get", "", _r(OPSM, FIN, ADM)),
    "admin:tasks_finance_job": Surface("get", "job", _r(OPSM, FIN, ADM)),
    "admin:tasks_finance_export": Surface("get", "finance_export", _r(OPSM, FIN, ADM)),
    # The ledger's rows for a period across jobs: whoever may read the ledger (tasks.view_costentry).
    "admin:tasks_finance_ledger_export": Surface("get", "", _r(OPSM, FIN, ADM), "?since=2020-01-01"),
    "admin:tasks_prediction_import": Surface("get", "job", _r(OPSM, ADM)),
    "admin:tasks_prediction_learning": Surface("get", "job", _r(OPSM, ADM)),
    # "resume" on the published job: refused by the service with a message, so the job stays as it is
    "admin:tasks_job_state": Surface("post", "job_state", _r(OPSM, ADM)),
    "admin:tasks_prediction_retraining": Surface("get", "job", _r(OPSM, ADM), "?model=m1"),
    "login": Surface("get", "", None),
    "join": Surface("get", "invitation", None),
    "logout": Surface("post", "", None),
    "home": Surface("get", "", _r(CROWD, *STAFF)),
    "work-list": Surface("get", "", _r(CROWD)),
    "my-scores": Surface("get", "", _r(CROWD)),
    "start-job": Surface("post", "job", _r(CROWD)),
    "task": Surface("get", "assignment", _r(CROWD)),
    "submit-task": Surface("post", "assignment", _r(CROWD)),
    "return-task": Surface("post", "assignment", _r(CROWD)),
    "task-layout": Surface("get", "layout_assignment", _r(CROWD)),
    "submit-layout-task": Surface("post", "layout_assignment", _r(CROWD)),
    # Framed by MTurk for MTurk's workers, who are not our users: public; a post is only a claim until MTurk lists it.
    "mturk-task": Surface("get", "", None, "?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId={mturk_hit}"),
    "qualification:list": Surface("get", "", _r(CROWD)),
    "qualification:start": Surface("post", "test", _r(CROWD)),
    "qualification:attempt": Surface("get", "attempt", _r(CROWD)),
    "qualification:submit": Surface("post", "attempt", _r(CROWD)),
    "qualification:result": Surface("get", "attempt", _r(CROWD)),
    "api-item-import": Surface("post", "job", _r(OPSM, ADM)),
    "api-job-predictions-import": Surface("post", "job", _r(OPSM, ADM)),
    "api-job-active-learning": Surface("get", "job", _r(OPSM, ADM)),
    "api-job-retraining": Surface("get", "job", _r(OPSM, ADM), "?model=m1"),
    "api-job-progress": Surface("get", "job", _r(OPSM, REV, FIN, ADM)),
    "api-root": Surface("get", "", STAFF),
    "api-schema": Surface("get", "", STAFF),
    "api-docs": Surface("get", "", STAFF),
    "api-job-list": Surface("get", "", STAFF),
    "api-job-detail": Surface("get", "job", STAFF),
    "api-job-status": Surface("get", "job", STAFF),
    "api-job-publish": Surface("post", "job", _r(OPSM, ADM)),
    "api-job-pause": Surface("post", "job", _r(OPSM, ADM)),
    "api-job-resume": Surface("post", "job", _r(OPSM, ADM)),
    "api-job-consensus": Surface("post", "job", _r(OPSM, ADM)),
    "api-job-items": Surface("get", "job", _r(OPSM, REV, ADM)),
    "api-job-assignments": Surface("get", "job", _r(OPSM, REV, FIN, ADM)),
    "api-job-labels": Surface("get", "job", _r(OPSM, REV, ADM)),
    "api-job-workers": Surface("get", "job", _r(OPSM, REV, ADM)),
    "api-job-costs": Surface("get", "job", _r(OPSM, FIN, ADM)),
    "api-job-export": Surface("get", "job", _r(OPSM, REV, ADM), "?format=jsonl"),
    "api-job-export-status": Surface("get", "export", _r(OPSM, ADM)),
    "api-job-versions": Surface("get", "job", _r(OPSM, REV, ADM)),
    "api-job-version": Surface("get", "version", _r(OPSM, REV, ADM)),
    "api-job-version-download": Surface("get", "version", _r(OPSM, REV, ADM)),
    "api-job-version-diff": Surface("get", "version", _r(OPSM, REV, ADM), "?against=1"),
    "api-assignment-approve": Surface("post", "job_assignment", _r(REV, ADM)),
    "api-assignment-reject": Surface("post", "job_assignment", _r(REV, ADM)),
    "api-assignment-bonus": Surface("post", "job_assignment", _r(REV, ADM)),
    # Last: it ends the job the surfaces above use.
    "api-job-cancel": Surface("post", "job", _r(OPSM, ADM)),
}

MODEL_VIEWS = ("changelist", "add", "change", "history", "delete")


def _url_names(resolver: URLResolver, namespace: str = "") -> list[str]:
    names: list[str] = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            names += _url_names(entry, f"{namespace}{entry.namespace}:" if entry.namespace else namespace)
        elif isinstance(entry, URLPattern) and entry.name:
            names.append(namespace + entry.name)
    return names


def _model_url_names() -> set[str]:
    return {
        f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}"
        for model in admin.site._registry
        for view in MODEL_VIEWS
    }


def test_every_surface_is_classified() -> None:
    registered = {model._meta.label_lower for model in admin.site._registry}
    assert registered == set(ADMIN_MODELS), "classify the new/removed model admins in ADMIN_MODELS"
    assert {m.split(".")[0] for m in registered} == set(ADMIN_APPS)
    names = set(_url_names(get_resolver())) - _model_url_names() - {"admin:app_list"}
    assert names == set(SURFACES), "classify the new/removed URLs in SURFACES"


LAYOUT = '<p>${text}</p><label><input type="radio" name="sentiment" value="pos"> Pos</label>'


@pytest.fixture
def world(
    make_published_job: Any,
    mturk: MTurkMarketplace,
    settings: Any,
    tmp_path: Any,
    django_capture_on_commit_callbacks: Any,
) -> dict[str, Any]:
    """One of everything, owned by the crowd worker where a worker owns it."""
    settings.MEDIA_ROOT = tmp_path / "media"
    crowd = WorkerFactory(user__username="crowd")
    crowd.user.groups.add(Group.objects.get(name=CROWD_WORKER))
    users: dict[str, Any] = {CROWD: crowd.user, ADM: UserFactory(username="root", is_staff=True, is_superuser=True)}
    for role, group in ((REV, REVIEWER), (FIN, FINANCE), (OPSM, OPS_MANAGER)):
        users[role] = UserFactory(username=role.replace(" ", "-"), is_staff=True)
        users[role].groups.add(Group.objects.get(name=group))
    job = make_published_job(items=3, budget_cap=Decimal("10.00"))
    other = WorkerFactory()
    assignment = assign_next_hit(job=job, worker=crowd)
    item = job.items.order_by("id").first()
    ConsensusLabel.objects.create(job=job, item=item, value="pos", confidence=0.9, method="mv", answers_count=3)
    WorkerJobScore.objects.create(job=job, worker=other, updated_at=assignment.accepted_at)
    block_worker(job=job, worker=other, actor=SYSTEM, reason="tests")
    from tasks.models import AssignmentFlag

    AssignmentFlag.objects.create(
        assignment=assignment,
        job=job,
        worker=assignment.worker,
        reason="gold_all_wrong",
        created_at=assignment.accepted_at,
    )
    from qualification.services import create_test

    test = create_test(actor=OPS, name="Basics", questions=sentiment_questions(), labels=["pos", "neg", "neutral"])
    attempt = start_attempt(test=test, worker=crowd)
    grant_qualification(worker=other, test=test, score=90.0, actor=SYSTEM)
    Token.objects.create(user=users[ADM])
    # Finance: a ledger line, this month's cap, an alert (the publish above reserved the job's budget).
    record_cost(
        job=job,
        kind=CostKind.REWARD,
        amount=Decimal("0.05"),
        marketplace=job.marketplace,
        assignment=assignment,
        worker=crowd,
        idempotency_key="matrix-reward",
    )
    set_monthly_cap(month=assignment.accepted_at.date(), cap=Decimal("100.00"), actor=SYSTEM)
    BudgetAlert.objects.create(job=job, threshold=50, spent=Decimal("5"), cap=Decimal("10"), created_at=item.created_at)
    # Console: two dataset versions and a finished background export.
    create_dataset_version(job=job, actor=SYSTEM)
    create_dataset_version(job=job, actor=SYSTEM, note="again")
    with django_capture_on_commit_callbacks(execute=True):
        export = request_label_export(job=job, fmt="jsonl", actor=SYSTEM)
    # A model's predictions, and a Ground Truth run with one of its labels.
    Prediction.objects.create(job=job, item=item, model_name="m1", value="pos", score=0.7, created_at=item.created_at)
    LabelingJob.objects.create(job=job, name="matrix-gt", status="InProgress")
    GroundTruthLabel.objects.create(
        item=item,
        job=job,
        labeling_job_name="matrix-gt",
        label_attribute="sentiment",
        task_type="groundtruth/text-classification",
        value="pos",
        created_at=item.created_at,
    )
    # A job with an MTurk layout, the crowd worker holding its task; and a Hit on MTurk (the stand-in).
    layout_job = make_published_job(items=1, task_template=LAYOUT, answer_field="sentiment", items_per_hit=1)
    layout_assignment = assign_next_hit(job=layout_job, worker=crowd)
    mturk_hit = Hit.objects.get(job=published_mturk_job(mturk, 1))
    MTurkPageSubmission.objects.create(
        assignment_id="3MATRIX", hit=mturk_hit, worker_id="AMATRIX", answers={}, received_at=item.created_at
    )
    MTurkBonus.objects.create(
        job=job,
        assignment=assignment,
        worker=assignment.worker,
        amount=Decimal("0.10"),
        reason="matrix",
        idempotency_key="matrix-bonus",
        token="matrix-bonus",
        created_at=item.created_at,
    )
    return {
        "users": users,
        "job": job,
        "assignment": assignment,
        "layout_assignment": layout_assignment,
        "test": test,
        "attempt": attempt,
        "export": export,
        "mturk_hit": mturk_hit.external_id,
        "invitation_token": invite_workers(actor=SYSTEM, count=1)[0][1],
    }


def _allowed(response: Any) -> bool:
    """2xx, 4xx other than 401/403/404/405, or a redirect that is not to a login page."""
    if response.status_code in (401, 403, 404, 405):
        return False
    if response.status_code in (301, 302):
        return "login" not in response["Location"]
    return response.status_code < 500


def _args(kind: str, world: dict[str, Any]) -> list[Any]:
    if kind == "job":
        return [world["job"].pk]
    if kind in ("assignment", "layout_assignment", "attempt"):
        return [world[kind].uuid]
    if kind == "export":
        return [world["job"].pk, world["export"].pk]
    if kind == "job_assignment":
        return [world["job"].pk, world["assignment"].pk]
    if kind == "version":
        return [world["job"].pk, 2]
    if kind == "job_state":
        return [world["job"].pk, "resume"]
    if kind == "finance_export":
        return [world["job"].pk, "worker", "csv"]
    if kind == "test":
        return [world["test"].pk]
    if kind == "user":
        return [world["users"][REV].pk]
    if kind == "invitation":
        return [world["invitation_token"]]
    if kind == "view_on_site":
        from django.contrib.contenttypes.models import ContentType

        return [ContentType.objects.get_for_model(Job).pk, world["job"].pk]
    return []


def _client(role: str, world: dict[str, Any]) -> Client:
    client = Client()
    if role != ANON:
        client.force_login(world["users"][role])
    return client


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_its_admin_pages(role: str, world: dict[str, Any]) -> None:
    client = _client(role, world)
    wrong: list[str] = []
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label_lower
        viewers, adders, deleters = ADMIN_MODELS[label]
        obj = model_admin.get_queryset(admin_request(world["users"][ADM])).order_by("pk").first()
        assert obj is not None, f"the world has no {label}"
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        for view, args, roles in (
            ("changelist", [], viewers),
            ("change", [obj.pk], viewers),
            ("history", [obj.pk], viewers),
            ("add", [], adders),
            ("delete", [obj.pk], deleters),
        ):
            response = client.get(reverse(f"{prefix}_{view}", args=args))
            if _allowed(response) != (role in roles):
                wrong.append(f"{prefix}_{view}: {response.status_code}")
    for app_label, roles in ADMIN_APPS.items():
        response = client.get(reverse("admin:app_list", args=[app_label]))
        if _allowed(response) != (role in roles):
            wrong.append(f"admin app {app_label}: {response.status_code}")
    assert not wrong, "role " + role + " gets wrong answers from: " + ", ".join(wrong)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_offered_exactly_its_admin_actions(role: str, world: dict[str, Any]) -> None:
    client = _client(role, world)
    wrong: list[str] = []
    for model in admin.site._registry:
        label = model._meta.label_lower
        response = client.get(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"))
        form = response.context["action_form"] if response.status_code == 200 and response.context else None
        offered = {value for value, _label in form.fields["action"].choices if value} if form else set()
        expected = {action for action, roles in ADMIN_ACTIONS.get(label, {}).items() if role in roles}
        if offered != expected:
            wrong.append(f"{label}: offered {sorted(offered)}, expected {sorted(expected)}")
    assert not wrong, "role " + role + " gets wrong actions: " + "; ".join(wrong)


def admin_request(user: Any) -> Any:
    from django.test import RequestFactory

    request = RequestFactory().get("/admin/")
    request.user = user
    return request


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_its_views_and_api_endpoints(role: str, world: dict[str, Any]) -> None:
    client = _client(role, world)
    wrong: list[str] = []
    for name, surface in SURFACES.items():
        if surface.roles is None:  # public: it answers everybody (a redirect after logout is an answer)
            response = _call(_client(role, world), name, surface, world)  # logging out ends only this session
            if response.status_code in (401, 403, 404, 405) or response.status_code >= 500:
                wrong.append(f"{name}: {response.status_code}")
            continue
        response = _call(client, name, surface, world)
        if _allowed(response) != (role in surface.roles):
            wrong.append(f"{name}: {response.status_code}")
    assert not wrong, "role " + role + " gets wrong answers from: " + ", ".join(wrong)


def _call(client: Client, name: str, surface: Surface, world: dict[str, Any], **headers: Any) -> Any:
    url = reverse(name, args=_args(surface.args, world)) + surface.query.format(**world)
    return client.post(url, {}, **headers) if surface.method == "post" else client.get(url, **headers)


API_SURFACES = {name: surface for name, surface in SURFACES.items() if name.startswith("api-")}


@pytest.mark.parametrize("role", [role for role in ROLES if role != ANON])
def test_each_role_reaches_exactly_its_api_endpoints_with_a_token(role: str, world: dict[str, Any]) -> None:
    """Token authentication gives a role what its session gives it; a crowd worker's token gets 403 everywhere."""
    token, _ = Token.objects.get_or_create(user=world["users"][role])
    wrong: list[str] = []
    for name, surface in API_SURFACES.items():
        assert surface.roles is not None
        response = _call(Client(), name, surface, world, HTTP_AUTHORIZATION=f"Token {token.key}")
        refused_as_a_worker = role != CROWD or response.status_code == 403
        if not refused_as_a_worker or _allowed(response) != (role in surface.roles):
            wrong.append(f"{name}: {response.status_code}")
    assert not wrong, "role " + role + " gets wrong answers from: " + ", ".join(wrong)


def test_the_api_refuses_an_anonymous_or_unknown_caller(world: dict[str, Any]) -> None:
    for name, surface in API_SURFACES.items():
        for headers in ({}, {"HTTP_AUTHORIZATION": "Token not-a-token"}):
            assert _call(Client(), name, surface, world, **headers).status_code in (401, 403), (name, headers)


def test_a_worker_cannot_open_another_workers_task_or_attempt(world: dict[str, Any]) -> None:
    intruder = WorkerFactory(user__username="intruder")
    client = Client()
    client.force_login(intruder.user)
    for name, obj in (
        ("task", world["assignment"]),
        ("submit-task", world["assignment"]),
        ("return-task", world["assignment"]),
        ("task-layout", world["layout_assignment"]),
        ("submit-layout-task", world["layout_assignment"]),
        ("qualification:attempt", world["attempt"]),
        ("qualification:submit", world["attempt"]),
        ("qualification:result", world["attempt"]),
    ):
        url = reverse(name, args=[obj.uuid])
        response = client.post(url, {}) if "submit" in name or "return" in name else client.get(url)
        assert response.status_code == 404, name


def test_the_api_refuses_a_token_of_a_user_without_the_permission(world: dict[str, Any]) -> None:
    token = Token.objects.create(user=world["users"][REV])
    url = reverse("api-item-import", args=[world["job"].pk])
    assert Client().post(url, {}, HTTP_AUTHORIZATION=f"Token {token.key}").status_code == 403
    progress = reverse("api-job-progress", args=[world["job"].pk])
    assert Client().get(progress, HTTP_AUTHORIZATION=f"Token {token.key}").status_code == 200
    assert Client().get(progress, HTTP_AUTHORIZATION="Token not-a-token").status_code == 401


def test_seeing_a_labeling_job_or_a_test_does_not_let_one_act_on_it(world: dict[str, Any]) -> None:
    """Stop/Refresh reach AWS and a new test version is a new object: viewing is not enough for either."""
    from django.contrib.auth.models import Permission

    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.set(Permission.objects.filter(codename__in=["view_labelingjob", "view_qualificationtest"]))
    client = Client()
    client.force_login(viewer)
    for changelist in ("admin:tasks_labelingjob_changelist", "admin:qualification_qualificationtest_changelist"):
        response = client.get(reverse(changelist))
        assert response.status_code == 200
        assert response.context["action_form"] is None, changelist  # no action offered, none accepted
