"""Bad input on the qualification test admin is a form error on a 200 page: never a 500, never a half-saved test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from qualification.models import QualificationTest, Question
from qualification.specs import QuestionSpec, unreadable_numbers, validate_question_specs
from tests.factories import UserFactory
from workforce.admin_fields import JSON_NESTED_TOO_DEEPLY
from workforce.audit import Actor

pytestmark = pytest.mark.django_db
MakeTest = Callable[..., QualificationTest]
ADD = "admin:qualification_qualificationtest_add"
DEEP = "[" * 5000 + "]" * 5000


@pytest.fixture
def admin_client(db: Any) -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def add_data(*, slug: str = "new-test", **question: str) -> dict[str, Any]:
    """A new test with one question (a numeric one by default), as the add page posts it."""
    data: dict[str, Any] = {
        "name": "New test",
        "slug": slug,
        "description": "",
        "task_kind": "text_classification",
        "labels": "pos\nneg",
        "multilabel_scoring": "exact",
        "pass_score": "80",
        "time_limit": "00:10:00",
        "retry_delay": "01:00:00",
        "max_attempts": "3",
        "is_active": "on",
        "questions-TOTAL_FORMS": "1",
        "questions-INITIAL_FORMS": "0",
        "questions-MIN_NUM_FORMS": "0",
        "questions-MAX_NUM_FORMS": "1000",
    }
    fields = {
        "position": "1",
        "identifier": "q1",
        "title": "",
        "prompt": "How much?",
        "payload": "{}",
        "answer_type": "numeric",
        "options": "[]",
        "accepted": "[42.5]",
        "points": "1",
        "tolerance": "0",
    }
    fields.update(question)
    data.update({f"questions-0-{name}": value for name, value in fields.items()})
    return data


def errors_on_page(response: Any) -> str:
    """Every error the page shows: the test's form, the question inline's forms and its non-form errors."""
    shown = [str(response.context["adminform"].form.errors)]
    for inline in response.context["inline_admin_formsets"]:
        shown += [str(inline.formset.non_form_errors()), *(str(f.errors) for f in inline.formset.forms)]
    return " ".join(shown)


def refused(admin_client: Client, data: dict[str, Any]) -> str:
    before = (QualificationTest.objects.count(), Question.objects.count())
    response = admin_client.post(reverse(ADD), data)
    assert response.status_code == 200, response
    assert (QualificationTest.objects.count(), Question.objects.count()) == before
    return errors_on_page(response)


def test_a_good_numeric_question_is_saved(admin_client: Client) -> None:
    response = admin_client.post(reverse(ADD), add_data())
    assert response.status_code == 302, errors_on_page(response) if response.context else response
    assert Question.objects.get().accepted == [42.5]


@pytest.mark.parametrize("field", ["payload", "options", "accepted"])
def test_a_question_field_nested_too_deeply_is_a_form_error(admin_client: Client, field: str) -> None:
    assert JSON_NESTED_TOO_DEEPLY in refused(admin_client, add_data(**{field: DEEP}))


def test_json_shallow_enough_to_read_but_too_deep_to_store_is_a_form_error(admin_client: Client) -> None:
    """Python reads JSON a little deeper than it writes it back: such a payload once failed on save."""
    payload = '{"text": ' + "[" * 895 + "]" * 895 + "}"
    assert JSON_NESTED_TOO_DEEPLY in refused(admin_client, add_data(payload=payload))


def test_test_labels_nested_too_deeply_are_a_form_error(admin_client: Client) -> None:
    assert JSON_NESTED_TOO_DEEPLY in refused(admin_client, {**add_data(), "labels": DEEP})


@pytest.mark.parametrize(
    ("accepted", "message"),
    [
        ("[NaN]", "NaN"),
        ("[1e999]", "1e999"),
        ('["abc"]', "not finite numbers"),
        ("[true]", "not finite numbers"),
    ],
)
def test_a_numeric_question_accepts_only_finite_numbers(admin_client: Client, accepted: str, message: str) -> None:
    assert message in refused(admin_client, add_data(accepted=accepted))


@pytest.mark.parametrize("accepted", ['"abc"', '{"a": 1}', "5"])
def test_accepted_answers_must_be_a_list(admin_client: Client, accepted: str) -> None:
    shown = refused(admin_client, add_data(answer_type="text", accepted=accepted))
    assert "Accepted answers must be a JSON list" in shown


def test_numeric_specs_with_unusable_accepted_answers_are_found() -> None:
    for accepted in ((float("nan"),), (float("inf"),), ("abc",), (True,), (None,)):
        spec = QuestionSpec(identifier="q", prompt="?", answer_type="numeric", accepted=accepted)
        assert unreadable_numbers(spec), accepted
    good = QuestionSpec(identifier="q", prompt="?", answer_type="numeric", accepted=(42.5, "7", 3))
    assert unreadable_numbers(good) == [] and validate_question_specs([good]) == []


def test_a_stored_numeric_question_with_a_text_answer_still_gets_a_new_version(make_test: MakeTest) -> None:
    """The finite-number check applies where questions are typed: a test stored before it keeps working."""
    from qualification.models import Question
    from qualification.services import create_new_version

    test = make_test()
    Question.objects.filter(test=test).update(answer_type="numeric", accepted=["about 42"], options=[])
    new = create_new_version(test=test, actor=Actor.system("test"))
    assert new.version == test.version + 1


def test_adding_a_test_with_the_slug_of_a_current_test_is_a_form_error(
    admin_client: Client, make_test: MakeTest
) -> None:
    existing = make_test()
    shown = refused(admin_client, add_data(slug=existing.slug))
    assert "already" in shown and "new version" in shown
    assert QualificationTest.objects.get(slug=existing.slug).pk == existing.pk


def test_adding_a_test_with_the_slug_of_an_older_version_is_a_form_error(
    admin_client: Client, make_test: MakeTest
) -> None:
    from qualification.services import create_new_version
    from tests.qualification.conftest import OPS

    old = make_test()
    create_new_version(test=old, actor=OPS)
    assert "already" in refused(admin_client, add_data(slug=old.slug))
