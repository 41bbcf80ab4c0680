"""The admin: tests with questions inline, frozen once attempted; attempts read-only; grant revoke action."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from qualification.models import Grant, QualificationTest
from qualification.services import start_attempt, submit_attempt
from tests.factories import UserFactory
from tests.qualification.conftest import RIGHT, T0
from workforce.models import AuditEvent, Worker

pytestmark = pytest.mark.django_db
MakeTest = Callable[..., QualificationTest]


@pytest.fixture
def admin_client(db: Any) -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def test_admin_pages_render(admin_client: Client, make_test: MakeTest, worker: Worker) -> None:
    test = make_test()
    submit_attempt(attempt=start_attempt(test=test, worker=worker, now=T0), worker=worker, answers=RIGHT, now=T0)
    for name in ("qualificationtest", "attempt", "grant"):
        assert admin_client.get(reverse(f"admin:qualification_{name}_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:qualification_qualificationtest_change", args=[test.pk])).status_code == 200
    assert admin_client.get(reverse("admin:qualification_qualificationtest_add")).status_code == 200


def test_a_test_nobody_attempted_yet_is_edited_in_place_with_its_slug_kept(
    admin_client: Client, make_test: MakeTest
) -> None:
    test = make_test()
    slug, questions = test.slug, test.questions.count()
    url = reverse("admin:qualification_qualificationtest_change", args=[test.pk])
    page = admin_client.get(url)
    assert page.status_code == 200 and "slug" in page.context["adminform"].readonly_fields
    form = page.context["adminform"].form
    data = {name: form[name].value() for name in form.fields}
    data |= {"name": "Sentiment basics, revised", "pass_score": 80, "labels": "pos\nneg", "slug": "other-slug"}
    data |= {"questions-TOTAL_FORMS": 0, "questions-INITIAL_FORMS": 0}
    data = {k: v for k, v in data.items() if v is not None}
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    test.refresh_from_db()
    assert (test.name, test.pass_score, test.slug, test.version) == ("Sentiment basics, revised", 80, slug, 1)
    assert test.questions.count() == questions


def test_an_attempted_test_is_read_only_and_the_action_makes_a_new_version(
    admin_client: Client, make_test: MakeTest, worker: Worker
) -> None:
    test = make_test()
    start_attempt(test=test, worker=worker, now=T0)
    url = reverse("admin:qualification_qualificationtest_change", args=[test.pk])
    admin_client.post(url, {"name": "Changed", "pass_score": 1})
    test.refresh_from_db()
    assert (test.name, test.pass_score) == ("Sentiment basics", 75)
    admin_client.post(
        reverse("admin:qualification_qualificationtest_changelist"),
        {"action": "make_new_version", "_selected_action": [test.pk]},
    )
    v2 = QualificationTest.objects.get(version=2)
    assert v2.is_current and v2.questions.count() == 4
    assert AuditEvent.objects.filter(action="qualification.test_versioned", actor_kind="user").count() == 1


def test_the_revoke_action_revokes_and_audits(admin_client: Client, make_test: MakeTest, worker: Worker) -> None:
    test = make_test()
    submit_attempt(attempt=start_attempt(test=test, worker=worker, now=T0), worker=worker, answers=RIGHT, now=T0)
    grant = Grant.objects.get()
    admin_client.post(
        reverse("admin:qualification_grant_changelist"), {"action": "revoke", "_selected_action": [grant.pk]}
    )
    grant.refresh_from_db()
    assert grant.revoked_at is not None
    assert AuditEvent.objects.filter(action="qualification.revoked", object_id=str(grant.pk)).count() == 1


def test_the_test_form_reads_labels_typed_one_per_line_or_with_commas(make_test: MakeTest) -> None:
    from qualification.admin import QualificationTestForm

    test = make_test()
    base = {
        "name": test.name,
        "slug": test.slug,
        "task_kind": test.task_kind,
        "multilabel_scoring": test.multilabel_scoring,
        "pass_score": 80,
        "time_limit": "00:10:00",
        "retry_delay": "1 00:00:00",
        "max_attempts": 3,
        "is_active": True,
    }
    for typed, labels in (("pos, neg", ["pos", "neg"]), ("pos\nneg\nneutral", ["pos", "neg", "neutral"]), ("", [])):
        form = QualificationTestForm(data={**base, "labels": typed}, instance=test)
        assert form.is_valid(), form.errors
        assert form.cleaned_data["labels"] == labels
    test.refresh_from_db()  # validating a bound form writes into its instance
    assert "pos\nneg\nneutral</textarea>" in str(QualificationTestForm(instance=test)["labels"])
    bad = QualificationTestForm(data={**base, "labels": "[1, 2]"}, instance=test)
    assert not bad.is_valid() and "one per line" in str(bad.errors["labels"])
    for typed, message in (("pos\n" + "x" * 101, "at most 100 characters"), ("pos\nn\x00g", "NUL")):
        refused = QualificationTestForm(data={**base, "labels": typed}, instance=test)
        assert not refused.is_valid() and message in str(refused.errors["labels"])
