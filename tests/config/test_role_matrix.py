"""Every surface against every role: admin pages, custom admin views, API endpoints and worker pages.

The surfaces are generated from the admin registry and the URL resolver, so a new model admin, admin
view or URL is tried automatically; one that is not classified in the tables below fails
``test_every_surface_is_classified`` until someone decides who may use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.authtoken.models import Token

from qualification.services import grant_qualification, start_attempt
from tasks.models import ConsensusLabel, Job, WorkerJobScore
from tasks.roles import CROWD_WORKER, FINANCE, OPS_MANAGER, REVIEWER
from tasks.services.pool import assign_next_hit
from tasks.services.quality import block_worker
from tests.conftest import SYSTEM
from tests.factories import UserFactory, WorkerFactory
from tests.qualification.conftest import OPS, sentiment_questions

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
    "workforce.worker": (_r(OPSM, REV, ADM), NOBODY, NOBODY),
    "workforce.auditevent": (_r(OPSM, FIN, ADM), NOBODY, NOBODY),
    "qualification.qualificationtest": (_r(OPSM, ADM), _r(OPSM, ADM), NOBODY),
    "qualification.attempt": (_r(OPSM, ADM), NOBODY, NOBODY),
    "qualification.grant": (_r(OPSM, ADM), NOBODY, NOBODY),
    "tasks.job": (_r(OPSM, REV, FIN, ADM), _r(OPSM, ADM), NOBODY),
    "tasks.item": (_r(OPSM, REV, ADM), NOBODY, NOBODY),
    "tasks.hit": (_r(OPSM, REV, ADM), NOBODY, NOBODY),
    "tasks.assignment": (_r(OPSM, REV, ADM), NOBODY, NOBODY),
    "tasks.consensuslabel": (_r(OPSM, REV, ADM), NOBODY, NOBODY),
    "tasks.workerjobscore": (_r(OPSM, ADM), NOBODY, NOBODY),
    "tasks.jobblock": (_r(OPSM, ADM), NOBODY, NOBODY),
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
    args: str  # which object fills the URL: "", "job", "assignment", "test", "attempt", "user", "view_on_site"
    roles: frozenset[str] | None


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
    "login": Surface("get", "", None),
    "logout": Surface("post", "", None),
    "home": Surface("get", "", _r(CROWD, *STAFF)),
    "work-list": Surface("get", "", _r(CROWD)),
    "start-job": Surface("post", "job", _r(CROWD)),
    "task": Surface("get", "assignment", _r(CROWD)),
    "submit-task": Surface("post", "assignment", _r(CROWD)),
    "return-task": Surface("post", "assignment", _r(CROWD)),
    "qualification:list": Surface("get", "", _r(CROWD)),
    "qualification:start": Surface("post", "test", _r(CROWD)),
    "qualification:attempt": Surface("get", "attempt", _r(CROWD)),
    "qualification:submit": Surface("post", "attempt", _r(CROWD)),
    "qualification:result": Surface("get", "attempt", _r(CROWD)),
    "api-item-import": Surface("post", "job", _r(OPSM, ADM)),
    "api-job-progress": Surface("get", "job", _r(OPSM, REV, FIN, ADM)),
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


@pytest.fixture
def world(make_published_job: Any) -> dict[str, Any]:
    """One of everything, owned by the crowd worker where a worker owns it."""
    crowd = WorkerFactory(user__username="crowd")
    crowd.user.groups.add(Group.objects.get(name=CROWD_WORKER))
    users: dict[str, Any] = {CROWD: crowd.user, ADM: UserFactory(username="root", is_staff=True, is_superuser=True)}
    for role, group in ((REV, REVIEWER), (FIN, FINANCE), (OPSM, OPS_MANAGER)):
        users[role] = UserFactory(username=role.replace(" ", "-"), is_staff=True)
        users[role].groups.add(Group.objects.get(name=group))
    job = make_published_job(items=3)
    other = WorkerFactory()
    assignment = assign_next_hit(job=job, worker=crowd)
    item = job.items.order_by("id").first()
    ConsensusLabel.objects.create(job=job, item=item, value="pos", confidence=0.9, method="mv", answers_count=3)
    WorkerJobScore.objects.create(job=job, worker=other, updated_at=assignment.accepted_at)
    block_worker(job=job, worker=other, actor=SYSTEM, reason="tests")
    from qualification.services import create_test

    test = create_test(actor=OPS, name="Basics", questions=sentiment_questions(), labels=["pos", "neg", "neutral"])
    attempt = start_attempt(test=test, worker=crowd)
    grant_qualification(worker=other, test=test, score=90.0, actor=SYSTEM)
    Token.objects.create(user=users[ADM])
    return {"users": users, "job": job, "assignment": assignment, "test": test, "attempt": attempt}


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
    if kind in ("assignment", "attempt"):
        return [world[kind].uuid]
    if kind == "test":
        return [world["test"].pk]
    if kind == "user":
        return [world["users"][REV].pk]
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
        if surface.roles is None:
            continue
        url = reverse(name, args=_args(surface.args, world))
        response = client.post(url, {}) if surface.method == "post" else client.get(url)
        if _allowed(response) != (role in surface.roles):
            wrong.append(f"{name}: {response.status_code}")
    assert not wrong, "role " + role + " gets wrong answers from: " + ", ".join(wrong)


def test_a_worker_cannot_open_another_workers_task_or_attempt(world: dict[str, Any]) -> None:
    intruder = WorkerFactory(user__username="intruder")
    client = Client()
    client.force_login(intruder.user)
    for name, obj in (
        ("task", world["assignment"]),
        ("submit-task", world["assignment"]),
        ("return-task", world["assignment"]),
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
