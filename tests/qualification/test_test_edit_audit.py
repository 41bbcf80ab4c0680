"""A qualification test's audit events show what changed: the admin's edits have a "before" read from the
database, and every snapshot holds, per question, what decides a score (the answer key as a keyed digest)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from qualification.models import QualificationTest
from qualification.services import create_new_version, edit_test, question_specs
from qualification.specs import QuestionSpec
from tests.qualification.conftest import OPS, sentiment_questions
from workforce.models import AuditEvent

pytestmark = pytest.mark.django_db
MakeTest = Callable[..., QualificationTest]


def _edited(test: QualificationTest) -> AuditEvent:
    [event] = AuditEvent.objects.filter(action="qualification.test_edited", object_id=str(test.pk))
    return event


def _question(snapshot: dict[str, Any], identifier: str) -> dict[str, Any]:
    [question] = [q for q in snapshot["questions"] if q["id"] == identifier]
    return question


def _change_form_data(client: Client, url: str) -> dict[str, Any]:
    """What the admin's change page would post back unchanged: the test's fields and its question inline."""
    context = client.get(url).context
    form = context["adminform"].form
    data: dict[str, Any] = {name: form[name].value() for name in form.fields}
    [inline] = context["inline_admin_formsets"]
    formset = inline.formset
    management = formset.management_form
    data |= {f"{formset.prefix}-{name}": management[name].value() for name in management.fields}
    for question_form in formset.forms:
        data |= {question_form.add_prefix(name): question_form[name].value() for name in question_form.fields}
    return {key: ("" if value is None else value) for key, value in data.items() if value is not False}


def test_an_admin_edit_records_the_stored_values_as_before_and_the_new_ones_as_after(
    admin_client: Client, admin_user: Any, make_test: MakeTest
) -> None:
    test = make_test(pass_score=75)
    url = reverse("admin:qualification_qualificationtest_change", args=[test.pk])
    data = _change_form_data(admin_client, url) | {"pass_score": 10}
    assert admin_client.post(url, data).status_code == 302
    event = _edited(test)
    assert (event.actor_kind, event.actor_id) == ("user", str(admin_user.pk))
    assert (event.before["pass_score"], event.after["pass_score"]) == (75, 10)
    assert event.before["questions"] == event.after["questions"]  # the questions were posted back unchanged
    assert [q["id"] for q in event.after["questions"]] == ["q1", "q2", "q3", "q4"]


def test_an_admin_edit_of_a_questions_accepted_answer_shows_in_the_event_without_the_answer(
    admin_client: Client, make_test: MakeTest
) -> None:
    test = make_test()
    url = reverse("admin:qualification_qualificationtest_change", args=[test.pk])
    data = _change_form_data(admin_client, url)
    [q3_prefix] = [key.removesuffix("-identifier") for key, value in data.items() if value == "q3"]
    data[f"{q3_prefix}-accepted"] = json.dumps(["Wombat-Echidna"])
    response = admin_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    assert test.questions.get(identifier="q3").accepted == ["Wombat-Echidna"]
    event = _edited(test)
    assert _question(event.before, "q3")["accepted"] != _question(event.after, "q3")["accepted"]
    assert _question(event.before, "q1") == _question(event.after, "q1")
    written = json.dumps([event.before, event.after])
    assert "Zanzibar" not in written and "Wombat" not in written  # the answer key itself is not in the trail


@pytest.mark.parametrize(
    ("change", "part"),
    [
        ({"accepted": ("neg",)}, "accepted"),
        ({"points": 3.0}, "points"),
        ({"answer_type": "multi", "accepted": ("pos",)}, "answer_type"),
    ],
)
def test_editing_a_question_in_the_service_shows_the_change_in_before_and_after(
    make_test: MakeTest, change: dict[str, Any], part: str
) -> None:
    test = make_test()
    specs = question_specs(test)
    specs[0] = QuestionSpec(**{**specs[0].__dict__, **change})
    edit_test(test=test, actor=OPS, questions=specs)
    event = _edited(test)
    before, after = _question(event.before, "q1"), _question(event.after, "q1")
    assert before[part] != after[part], (before, after)
    assert event.before["questions"][1:] == event.after["questions"][1:]  # the other questions are unchanged


def test_a_changed_tolerance_shows_in_the_event(make_test: MakeTest) -> None:
    test = make_test()
    specs = question_specs(test)
    specs[3] = QuestionSpec(**{**specs[3].__dict__, "tolerance": 5.0})
    edit_test(test=test, actor=OPS, questions=specs)
    event = _edited(test)
    assert (_question(event.before, "q4")["tolerance"], _question(event.after, "q4")["tolerance"]) == (0.01, 5.0)


def test_the_answer_key_digest_is_keyed_with_the_sites_secret(make_test: MakeTest, settings: Any) -> None:
    """Finance reads the audit trail but not the tests: a plain hash of "pos" could be guessed, a keyed one not."""
    test = make_test()
    first = _question(AuditEvent.objects.get(action="qualification.test_created").after, "q1")["accepted"]
    settings.SECRET_KEY = "another secret key for this test only, long enough to be a real one"
    edit_test(test=test, actor=OPS, changes={"description": "touch"})
    assert _question(_edited(test).after, "q1")["accepted"] != first


def test_a_new_version_records_its_questions(make_test: MakeTest) -> None:
    test = make_test()
    new = create_new_version(test=test, actor=OPS, questions=sentiment_questions()[:2])
    [event] = AuditEvent.objects.filter(action="qualification.test_versioned")
    assert event.object_id == str(new.pk)
    assert [q["id"] for q in event.after["questions"]] == ["q1", "q2"]
