"""qualification.mturk_xml: the real P.808 QuestionForm + AnswerKey import; export and import back."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from qualification.models import QualificationTest
from qualification.mturk_xml import (
    ANSWER_KEY_NS,
    QUESTION_FORM_NS,
    MturkXmlError,
    build_answer_key,
    build_question_form,
    build_question_specs,
    export_mturk_test,
    import_mturk_test_once,
    parse_answer_key,
    parse_question_form,
)
from qualification.services import start_attempt, submit_attempt
from qualification.specs import OptionSpec, QuestionSpec
from tests.factories import WorkerFactory
from tests.qualification.conftest import OPS, T0

DATA = Path("/work/shared/data/mturk")
FORM = (DATA / "p808_qualification_questionform.xml").read_bytes()
KEY = (DATA / "p808_qualification_answer_key.xml").read_bytes()


def shape(test: QualificationTest) -> list[tuple[Any, ...]]:
    return [
        (q.identifier, q.title, q.prompt, q.answer_type, q.options, q.accepted, q.points, q.payload)
        for q in test.questions.order_by("position")
    ]


@pytest.mark.django_db
def test_the_real_p808_pair_imports() -> None:
    test, created = import_mturk_test_once(questions_xml=FORM, answers_xml=KEY, name="P.808 qualification", actor=OPS)
    assert created
    assert (test.version, test.description) == (1, parse_question_form(FORM).description)
    q1, q2 = test.questions.order_by("position")
    assert (q1.identifier, q1.title, q1.prompt) == ("1_gender", "Gender", "What is your gender?")
    assert q1.options == [
        {"value": "m", "label": "Male"},
        {"value": "f", "label": "Female"},
        {"value": "o", "label": "Other"},
    ]
    assert (q1.answer_type, q1.accepted, q1.points) == ("single", ["m"], 1.0)
    assert (q2.identifier, q2.accepted, q2.points) == ("2_language", [], 0.0)
    assert [o["value"] for o in q2.options] == ["en", "dde", "o"]
    assert [(m["element"], m["type"], m["subtype"]) for m in q2.payload["media"]] == [
        ("Binary", "audio", "wav"),
        ("EmbeddedBinary", "audio", "wav"),
    ]
    assert q2.payload["media"][0]["url"] == "https://p808.s3.amazonaws.com/assets/clips/sample_hearing_test/s0.wav"


@pytest.mark.django_db
def test_percentage_mapping_scores_the_key_only(monkeypatch: Any) -> None:
    test, _ = import_mturk_test_once(questions_xml=FORM, answers_xml=KEY, name="P.808", actor=OPS, pass_score=100)
    worker = WorkerFactory()
    attempt = start_attempt(test=test, worker=worker, now=T0)
    # The unscored language question does not change the percentage.
    done = submit_attempt(attempt=attempt, worker=worker, answers={"1_gender": "m", "2_language": "o"}, now=T0)
    assert (done.score, done.passed) == (100.0, True)


@pytest.mark.django_db
def test_export_then_import_gives_back_the_same_test() -> None:
    first, _ = import_mturk_test_once(questions_xml=FORM, answers_xml=KEY, name="P.808", actor=OPS)
    form_xml, key_xml = export_mturk_test(first)
    assert ET.fromstring(form_xml).tag == f"{{{QUESTION_FORM_NS}}}QuestionForm"
    assert ET.fromstring(key_xml).tag == f"{{{ANSWER_KEY_NS}}}AnswerKey"
    again, created = import_mturk_test_once(questions_xml=form_xml, answers_xml=key_xml, name="P.808 again", actor=OPS)
    assert created
    assert shape(again) == shape(first)
    assert export_mturk_test(again) == (form_xml, key_xml)


def test_native_questions_round_trip_through_the_xml() -> None:
    specs = [
        QuestionSpec(
            identifier="animals",
            title="Animals",
            prompt="Which animals are in the picture?",
            answer_type="multi",
            payload={"text": "Look closely."},
            options=(OptionSpec("cat", "Cat"), OptionSpec("dog", "Dog"), OptionSpec("cow", "Cow")),
            accepted=("cat", "dog"),
            points=2.0,
        ),
        QuestionSpec(
            identifier="one",
            prompt="Pick b",
            options=(OptionSpec("a", "A & <A>"), OptionSpec("b", "B")),
            accepted=("b",),
            points=3.0,
        ),
        QuestionSpec(identifier="free", prompt="Say anything", answer_type="text", points=0.0),
        QuestionSpec(identifier="num", prompt="A number", answer_type="numeric", points=0.0),
    ]
    form = parse_question_form(build_question_form(specs, description="About the test"))
    back = build_question_specs(form, parse_answer_key(build_answer_key(specs)))
    assert form.description == "About the test"
    for original, parsed in zip(specs, back, strict=True):
        assert (parsed.identifier, parsed.title, parsed.prompt, parsed.answer_type) == (
            original.identifier,
            original.title,
            original.prompt,
            original.answer_type,
        )
        assert (parsed.options, parsed.accepted, parsed.points) == (
            original.options,
            original.accepted,
            original.points,
        )
        assert parsed.payload.get("text") == original.payload.get("text")


@pytest.mark.parametrize(
    ("form", "key", "message"),
    [
        (b"<QuestionForm><Question>", KEY, "not well-formed"),
        (b"<AnswerKey/>", KEY, "Expected a <QuestionForm>"),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><QuestionForm/>',
            KEY,
            "DOCTYPE",
        ),
        # An external entity in UTF-16: no plain "<!DOCTYPE" bytes to spot, refused by defusedxml all the same.
        (
            '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE q [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            "<QuestionForm>&x;</QuestionForm>".encode("utf-16"),
            KEY,
            "DOCTYPE",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b"<QuestionForm>&b;&b;&b;&b;</QuestionForm>",
            KEY,
            "DOCTYPE",
        ),
        (FORM, KEY.replace(b"<SelectionIdentifier>m<", b"<SelectionIdentifier>zz<"), "does not offer"),
        (FORM, KEY.replace(b"1_gender", b"9_missing"), "not in the QuestionForm: 9_missing"),
        (FORM, KEY.replace(b"<MaximumSummedScore>1<", b"<MaximumSummedScore>4<"), "MaximumSummedScore is 4"),
        (FORM, KEY.replace(b"<AnswerScore>1<", b"<AnswerScore>one<"), "whole number"),
        (FORM, KEY.replace(b"PercentageMapping", b"ScoreRange"), "Only a PercentageMapping"),
        (
            FORM.replace(b"<Text>What is your gender?</Text>", b"<FormattedContent>x</FormattedContent>"),
            KEY,
            "FormattedContent",
        ),
    ],
)
def test_bad_xml_is_refused_with_one_sentence(form: bytes, key: bytes, message: str) -> None:
    with pytest.raises(MturkXmlError, match=message):
        build_question_specs(parse_question_form(form), parse_answer_key(key))


def test_scored_free_text_cannot_be_exported() -> None:
    with pytest.raises(MturkXmlError, match="scores free text"):
        build_question_form([QuestionSpec(identifier="t", prompt="?", answer_type="text", accepted=("x",))])
