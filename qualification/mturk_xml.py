"""MTurk QuestionForm + AnswerKey XML: import into a qualification test, export a test back.

Mapping (parsing and building are pure; only ``import_mturk_test_once``/``export_mturk_test``
touch the database):

- ``Question/QuestionIdentifier`` -> ``Question.identifier``; ``QuestionContent``: ``Title`` -> title, the
  first ``Text`` -> prompt, further ``Text`` elements -> ``payload["text"]``, ``Binary``/``EmbeddedBinary``
  -> ``payload["media"]``.
- ``SelectionAnswer`` -> a ``single`` question (``multi`` when ``MaxSelectionCount`` > 1 or the style is
  ``checkbox``/``multichooser``), ``Selection`` -> options (``SelectionIdentifier`` is the value).
- ``FreeTextAnswer`` -> a ``text`` question (``numeric`` with ``Constraints/IsNumeric``). The AnswerKey
  format only scores selections, so free-text questions import unscored (0 points).
- AnswerKey ``AnswerOption``: the identifiers with the question's best ``AnswerScore`` are accepted and
  that score is the question's points; questions missing from the key are unscored.
- ``QualificationValueMapping/PercentageMapping``: the score is 100 * summed score / ``MaximumSummedScore``,
  which is what :func:`qualification.grading.score_percent` computes when ``MaximumSummedScore`` equals the
  sum of the questions' points (checked); the test's ``pass_score`` is then that percentage threshold.
  ``ScoreRange`` mappings, ``DefaultScore``, partial per-option scores, ``FormattedContent``, ``List``,
  ``Application``, ``OtherSelection`` and ``FileUploadAnswer`` are refused with a sentence.

DOCTYPE/ENTITY declarations are refused before parsing, so entity expansion cannot be abused.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Final

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring
from django.db import transaction

from qualification.errors import QualificationError
from qualification.grading import AnswerType
from qualification.models import QualificationTest
from qualification.services import create_test, question_specs
from qualification.specs import OptionSpec, QuestionSpec
from workforce.audit import Actor

QUESTION_FORM_NS: Final = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2017-11-06/QuestionForm.xsd"
ANSWER_KEY_NS: Final = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/AnswerKey.xsd"
MAX_XML_BYTES: Final = 5 * 1024 * 1024
MULTI_STYLES: Final = frozenset({"checkbox", "multichooser"})
UNSUPPORTED_CONTENT: Final = frozenset({"FormattedContent", "List", "Application"})


class MturkXmlError(QualificationError):
    """The XML is not a QuestionForm/AnswerKey this importer understands (or a test cannot be exported)."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    found = _children(element, name)
    return found[0] if found else None


def _text(element: ET.Element, name: str, default: str = "") -> str:
    child = _child(element, name)
    return default if child is None or child.text is None else child.text.strip()


def _parse(xml: str | bytes, root_name: str) -> ET.Element:
    data = xml.encode() if isinstance(xml, str) else xml
    if len(data) > MAX_XML_BYTES:
        raise MturkXmlError(f"The {root_name} XML is larger than {MAX_XML_BYTES // (1024 * 1024)} MB.")
    try:
        # defusedxml: no DTDs at all, so no external entities, no entity expansion bombs, in any encoding.
        root = defused_fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise MturkXmlError(f"The {root_name} XML declares a DOCTYPE or entities, which are not accepted.") from exc
    except ET.ParseError as exc:
        raise MturkXmlError(f"The {root_name} XML is not well-formed ({exc}).") from exc
    if _local(root.tag) != root_name:
        raise MturkXmlError(f"Expected a <{root_name}> document but found <{_local(root.tag)}>.")
    return root


# --- QuestionForm -> specs ------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedForm:
    description: str
    questions: list[QuestionSpec]


def _media(element: ET.Element) -> dict[str, Any]:
    kind = _local(element.tag)
    mime = _child(element, "MimeType" if kind == "Binary" else "EmbeddedMimeType")
    item: dict[str, Any] = {
        "element": kind,
        "type": _text(mime, "Type") if mime is not None else "",
        "subtype": _text(mime, "SubType") if mime is not None else "",
        "url": _text(element, "DataURL"),
        "alt": _text(element, "AltText"),
    }
    if kind == "EmbeddedBinary":
        item["width"] = _text(element, "Width")
        item["height"] = _text(element, "Height")
    return item


def _content(question_id: str, content: ET.Element | None) -> tuple[str, str, dict[str, Any]]:
    title, texts, media = "", [], []
    for element in content if content is not None else []:
        name = _local(element.tag)
        if name == "Title":
            title = (element.text or "").strip()
        elif name == "Text":
            texts.append((element.text or "").strip())
        elif name in ("Binary", "EmbeddedBinary"):
            media.append(_media(element))
        elif name in UNSUPPORTED_CONTENT:
            raise MturkXmlError(f"Question {question_id} uses <{name}>, which this importer does not support.")
    payload: dict[str, Any] = {}
    if len(texts) > 1:
        payload["text"] = "\n\n".join(texts[1:])
    if media:
        payload["media"] = media
    return title, texts[0] if texts else "", payload


def _answer_spec(question_id: str, spec: ET.Element | None) -> tuple[str, tuple[OptionSpec, ...], dict[str, Any]]:
    answer = next(iter(spec), None) if spec is not None else None
    if answer is None:
        raise MturkXmlError(f"Question {question_id} has no AnswerSpecification.")
    name = _local(answer.tag)
    if name == "FreeTextAnswer":
        constraints = _child(answer, "Constraints")
        numeric = constraints is not None and _child(constraints, "IsNumeric") is not None
        return (AnswerType.NUMERIC if numeric else AnswerType.TEXT), (), {}
    if name != "SelectionAnswer":
        raise MturkXmlError(f"Question {question_id} uses <{name}>, which this importer does not support.")
    style = _text(answer, "StyleSuggestion", "radiobutton")
    max_count = _text(answer, "MaxSelectionCount", "1")
    selections = _child(answer, "Selections")
    if selections is None:
        raise MturkXmlError(f"Question {question_id} has a SelectionAnswer without Selections.")
    if _child(selections, "OtherSelection") is not None:
        raise MturkXmlError(f"Question {question_id} uses <OtherSelection>, which this importer does not support.")
    options = []
    for selection in _children(selections, "Selection"):
        value = _text(selection, "SelectionIdentifier")
        if not value:
            raise MturkXmlError(f"Question {question_id} has a Selection without a SelectionIdentifier.")
        if _child(selection, "Text") is None:
            raise MturkXmlError(f"Selection {value} of question {question_id} has no <Text> label.")
        options.append(OptionSpec(value=value, label=_text(selection, "Text")))
    if not options:
        raise MturkXmlError(f"Question {question_id} offers no selections.")
    multi = style in MULTI_STYLES or (max_count.isascii() and max_count.isdigit() and int(max_count) > 1)
    return (AnswerType.MULTI if multi else AnswerType.SINGLE), tuple(options), {"style": style}


def parse_question_form(xml: str | bytes) -> ParsedForm:
    root = _parse(xml, "QuestionForm")
    overview: list[str] = []
    questions: list[QuestionSpec] = []
    for element in root:
        name = _local(element.tag)
        if name == "Overview":
            overview += [(t.text or "").strip() for t in element if _local(t.tag) in ("Title", "Text")]
        elif name == "Question":
            identifier = _text(element, "QuestionIdentifier")
            if not identifier:
                raise MturkXmlError(f"Question {len(questions) + 1} has no QuestionIdentifier.")
            title, prompt, payload = _content(identifier, _child(element, "QuestionContent"))
            answer_type, options, mturk = _answer_spec(identifier, _child(element, "AnswerSpecification"))
            mturk["required"] = _text(element, "IsRequired", "false").lower() == "true"
            questions.append(
                QuestionSpec(
                    identifier=identifier,
                    prompt=prompt,
                    answer_type=answer_type,
                    title=title,
                    payload={**payload, "mturk": mturk},
                    options=options,
                    points=0.0,
                )
            )
    if not questions:
        raise MturkXmlError("The QuestionForm has no questions.")
    return ParsedForm(description="\n\n".join(t for t in overview if t), questions=questions)


# --- AnswerKey ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedKey:
    """Per question: (selection identifiers, score) per AnswerOption; and the percentage mapping's max."""

    options: dict[str, list[tuple[tuple[str, ...], int]]]
    maximum_summed_score: int | None


def _int(value: str, what: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise MturkXmlError(f"{what} must be a whole number, not {value!r}.") from exc


def parse_answer_key(xml: str | bytes) -> ParsedKey:
    root = _parse(xml, "AnswerKey")
    options: dict[str, list[tuple[tuple[str, ...], int]]] = {}
    for question in _children(root, "Question"):
        identifier = _text(question, "QuestionIdentifier")
        if not identifier:
            raise MturkXmlError("An AnswerKey question has no QuestionIdentifier.")
        if _int(_text(question, "DefaultScore", "0"), f"DefaultScore of {identifier}") != 0:
            raise MturkXmlError(f"Question {identifier} has a DefaultScore, which this importer does not support.")
        entries = []
        for option in _children(question, "AnswerOption"):
            ids = tuple((s.text or "").strip() for s in _children(option, "SelectionIdentifier"))
            score = _int(_text(option, "AnswerScore"), f"AnswerScore of {identifier}")
            entries.append((ids, score))
        options[identifier] = entries
    maximum = None
    mapping = _child(root, "QualificationValueMapping")
    if mapping is not None:
        percentage = _child(mapping, "PercentageMapping")
        if percentage is None:
            raise MturkXmlError("Only a PercentageMapping QualificationValueMapping is supported (not ScoreRange).")
        maximum = _int(_text(percentage, "MaximumSummedScore"), "MaximumSummedScore")
        if maximum <= 0:
            raise MturkXmlError("MaximumSummedScore must be positive.")
    return ParsedKey(options=options, maximum_summed_score=maximum)


def _scored(question: QuestionSpec, entries: list[tuple[tuple[str, ...], int]]) -> QuestionSpec:
    qid = question.identifier
    if question.answer_type not in (AnswerType.SINGLE, AnswerType.MULTI):
        raise MturkXmlError(f"The AnswerKey scores question {qid}, which is not a selection question.")
    values = {o.value for o in question.options}
    for ids, _score in entries:
        unknown = [i for i in ids if i not in values]
        if unknown or not ids:
            raise MturkXmlError(
                f"The AnswerKey names selection(s) {unknown or ids} that question {qid} does not offer."
            )
    scores = [score for _ids, score in entries]
    best = max(scores, default=0)
    if best <= 0:
        return question
    if any(0 < score < best for score in scores) or any(score < 0 for score in scores):
        raise MturkXmlError(f"Question {qid} gives partial or negative scores, which this importer does not support.")
    winning = [ids for ids, score in entries if score == best]
    if question.answer_type == AnswerType.MULTI:
        if len(winning) != 1:
            raise MturkXmlError(f"Multi-selection question {qid} must have exactly one scored AnswerOption.")
        accepted: tuple[str, ...] = winning[0]
    else:
        if any(len(ids) != 1 for ids in winning):
            raise MturkXmlError(f"Single-selection question {qid} has an AnswerOption with several selections.")
        accepted = tuple(ids[0] for ids in winning)
    return replace(question, accepted=accepted, points=float(best))


def build_question_specs(form: ParsedForm, key: ParsedKey) -> list[QuestionSpec]:
    """The form's questions with the key's accepted answers and points (pure)."""
    by_id = {q.identifier: q for q in form.questions}
    stray = sorted(set(key.options) - set(by_id))
    if stray:
        raise MturkXmlError(f"The AnswerKey names question(s) not in the QuestionForm: {', '.join(stray)}.")
    specs = [_scored(q, key.options[q.identifier]) if q.identifier in key.options else q for q in form.questions]
    total = sum(q.points for q in specs)
    if key.maximum_summed_score is not None and key.maximum_summed_score != total:
        raise MturkXmlError(
            f"MaximumSummedScore is {key.maximum_summed_score} but the best scores add up to {total:g}; "
            "only a mapping where they agree is supported."
        )
    return specs


# --- specs -> XML ---------------------------------------------------------------------------------


def _sub(parent: ET.Element, name: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, name)
    if text is not None:
        element.text = text
    return element


def _write_media(content: ET.Element, media: Iterable[dict[str, Any]]) -> None:
    for item in media:
        kind = "EmbeddedBinary" if item.get("element") == "EmbeddedBinary" else "Binary"
        element = _sub(content, kind)
        mime = _sub(element, "EmbeddedMimeType" if kind == "EmbeddedBinary" else "MimeType")
        _sub(mime, "Type", str(item.get("type") or "application"))
        if item.get("subtype"):
            _sub(mime, "SubType", str(item["subtype"]))
        _sub(element, "DataURL", str(item.get("url", "")))
        _sub(element, "AltText", str(item.get("alt", "")))
        if kind == "EmbeddedBinary":
            _sub(element, "Width", str(item.get("width") or "400"))
            _sub(element, "Height", str(item.get("height") or "300"))


def _points(question: QuestionSpec) -> int:
    if question.points != int(question.points):
        raise MturkXmlError(
            f"Question {question.identifier} is worth {question.points:g} points; MTurk needs whole numbers."
        )
    return int(question.points)


def build_question_form(questions: Iterable[QuestionSpec], *, description: str = "") -> str:
    ET.register_namespace("", QUESTION_FORM_NS)
    root = ET.Element(f"{{{QUESTION_FORM_NS}}}QuestionForm")
    if description:
        _sub(_sub(root, "Overview"), "Text", description)
    for q in questions:
        mturk = q.payload.get("mturk", {}) if isinstance(q.payload.get("mturk"), dict) else {}
        element = _sub(root, "Question")
        _sub(element, "QuestionIdentifier", q.identifier)
        _sub(element, "IsRequired", "true" if mturk.get("required", True) else "false")
        content = _sub(element, "QuestionContent")
        if q.title:
            _sub(content, "Title", q.title)
        if q.prompt or q.payload.get("text"):
            _sub(content, "Text", q.prompt)
        if q.payload.get("text"):
            _sub(content, "Text", str(q.payload["text"]))
        media = list(q.payload.get("media") or [])
        if q.payload.get("image_url"):
            media.append({"element": "Binary", "type": "image", "url": q.payload["image_url"], "alt": "image"})
        _write_media(content, media)
        spec = _sub(element, "AnswerSpecification")
        if q.answer_type in (AnswerType.SINGLE, AnswerType.MULTI):
            if not q.options:
                raise MturkXmlError(f"Question {q.identifier} has no options of its own to export.")
            answer = _sub(spec, "SelectionAnswer")
            if q.answer_type == AnswerType.MULTI:
                _sub(answer, "MinSelectionCount", "0")
                _sub(answer, "MaxSelectionCount", str(len(q.options)))
            multi_style = q.answer_type == AnswerType.MULTI
            _sub(answer, "StyleSuggestion", str(mturk.get("style") or ("checkbox" if multi_style else "radiobutton")))
            selections = _sub(answer, "Selections")
            for option in q.options:
                selection = _sub(selections, "Selection")
                _sub(selection, "SelectionIdentifier", option.value)
                _sub(selection, "Text", option.label)
        else:
            if q.points > 0:
                raise MturkXmlError(f"Question {q.identifier} scores free text, which an MTurk AnswerKey cannot.")
            answer = _sub(spec, "FreeTextAnswer")
            if q.answer_type == AnswerType.NUMERIC:
                _sub(_sub(answer, "Constraints"), "IsNumeric")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=False) + "\n"


def build_answer_key(questions: Iterable[QuestionSpec]) -> str:
    ET.register_namespace("", ANSWER_KEY_NS)
    root = ET.Element(f"{{{ANSWER_KEY_NS}}}AnswerKey")
    total = 0
    for q in questions:
        points = _points(q)
        if points <= 0 or not q.accepted:
            continue
        total += points
        element = _sub(root, "Question")
        _sub(element, "QuestionIdentifier", q.identifier)
        groups = [q.accepted] if q.answer_type == AnswerType.MULTI else [(a,) for a in q.accepted]
        for group in groups:
            option = _sub(element, "AnswerOption")
            for value in group:
                _sub(option, "SelectionIdentifier", str(value))
            _sub(option, "AnswerScore", str(points))
    if total:
        _sub(_sub(_sub(root, "QualificationValueMapping"), "PercentageMapping"), "MaximumSummedScore", str(total))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=False) + "\n"


# --- database edges -------------------------------------------------------------------------------


# Whether a test is switched on is an ops decision made after the import, not part of what was imported.
_NOT_COMPARED = frozenset({"is_active"})


def import_mturk_test_once(
    *, questions_xml: str | bytes, answers_xml: str | bytes, name: str, actor: Actor, **fields: Any
) -> tuple[QualificationTest, bool]:
    """Create a test (version 1) from a QuestionForm and its AnswerKey, ``fields`` as for ``create_test``, and
    return it with ``True`` (created). Re-importing is a no-op: a current test called ``name`` with the same
    questions and settings is returned with ``False`` instead of being copied. A current test of that name
    with other questions or settings is refused with a sentence naming it."""
    form = parse_question_form(questions_xml)
    specs = build_question_specs(form, parse_answer_key(answers_xml))
    fields.setdefault("description", form.description)
    with transaction.atomic():
        namesakes = list(
            QualificationTest.objects.select_for_update().filter(name=name, is_current=True).order_by("pk")
        )
        for test in namesakes:
            settings_match = all(getattr(test, k) == v for k, v in fields.items() if k not in _NOT_COMPARED)
            if settings_match and question_specs(test) == specs:
                return test, False
        if namesakes:
            other = namesakes[0]
            raise QualificationError(
                f"Qualification test {other.pk} (version {other.version}) is already called “{name}” and has other "
                "questions or settings; give another --name, or edit that test in the admin (a new version)."
            )
        return create_test(actor=actor, name=name, questions=specs, **fields), True


def export_mturk_test(test: QualificationTest) -> tuple[str, str]:
    """(QuestionForm XML, AnswerKey XML) for a test."""
    specs = question_specs(test)
    return build_question_form(specs, description=test.description), build_answer_key(specs)
