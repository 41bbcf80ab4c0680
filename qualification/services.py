"""Qualification writes: tests and versions, attempts, grants. Each runs in ``transaction.atomic``,
changes state by conditional updates and writes its own audit events."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.text import slugify

from qualification.errors import AttemptRefused, InvalidTest, QualificationError
from qualification.expiry import (  # noqa: F401  (expire_overdue_attempts: re-exported)
    ATTEMPT_OBJECT,
    SUBMIT_GRACE,
    expire_attempt,
    expire_overdue_attempts,
    expire_overdue_for_worker,
)
from qualification.grading import AnswerType, grade_answer, score_percent
from qualification.models import Attempt, AttemptState, Grant, MultilabelScoring, QualificationTest, Question
from qualification.policies import AttemptAllowance, attempt_policy
from qualification.specs import OptionSpec, QuestionSpec, validate_question_specs
from workforce.audit import Actor, QueuedEvent, record_audit_event, record_audit_events
from workforce.models import Worker

MAX_ANSWER_LENGTH = 1000

# Fields an ops manager may set on a test (versioning fields are the services' own).
EDITABLE_FIELD_ORDER = (
    "name",
    "description",
    "task_kind",
    "labels",
    "multilabel_scoring",
    "pass_score",
    "time_limit",
    "retry_delay",
    "max_attempts",
    "is_active",
)
EDITABLE_FIELDS = frozenset(EDITABLE_FIELD_ORDER)

TEST_OBJECT = "qualification_test"
GRANT_OBJECT = "qualification_grant"


def _keyed_digest(test: QualificationTest, question: Question, part: str, value: Any) -> str:
    """A keyed hash (the site's secret key) of one part of a question: it changes when the part does, but the
    audit trail's readers (finance too, who may not see tests) cannot recover or guess the answer key."""
    text = json.dumps([test.family_id, question.identifier, part, value], sort_keys=True, default=str)
    return salted_hmac("qualification.audit", text, algorithm="sha256").hexdigest()[:24]


def _test_snapshot(test: QualificationTest) -> dict[str, Any]:
    """What an audit event shows of a test: its settings and, per question, what decides a score. The
    accepted answers (and the text) only as keyed digests: they are the screening's answer key."""
    data = {name: getattr(test, name) for name in sorted(EDITABLE_FIELDS)}
    questions = [
        {
            "id": q.identifier,
            "position": q.position,
            "answer_type": q.answer_type,
            "options": q.options,
            "accepted": _keyed_digest(test, q, "accepted", sorted(json.dumps(a, sort_keys=True) for a in q.accepted)),
            "points": q.points,
            "tolerance": q.tolerance,
            "content": _keyed_digest(test, q, "content", [q.title, q.prompt, q.payload]),
        }
        for q in Question.objects.filter(test_id=test.pk).order_by("position")
    ]
    data.update(slug=test.slug, version=test.version, questions=questions)
    return data


def lock_test_snapshot(*, test_id: int) -> dict[str, Any]:
    """Lock a test and return its audit snapshot as stored: the admin takes it before its form writes."""
    return _test_snapshot(QualificationTest.objects.select_for_update().get(pk=test_id))


def _check_fields(fields: Mapping[str, Any]) -> None:
    unknown = sorted(set(fields) - EDITABLE_FIELDS)
    if unknown:
        raise InvalidTest(f"These test fields cannot be set: {', '.join(unknown)}.")


def _full_clean(test: QualificationTest) -> None:
    try:
        test.full_clean(exclude=["slug", "root", "previous", "created_by"], validate_unique=False)
    except ValidationError as exc:
        messages = [f"{field}: {' '.join(errs)}" for field, errs in exc.message_dict.items()]
        raise InvalidTest("The test is not valid: " + "; ".join(messages) + ".") from exc


def _save_questions(test: QualificationTest, questions: Sequence[QuestionSpec]) -> None:
    errors = validate_question_specs(tuple(questions))
    labels = [str(label) for label in test.labels]
    for q in questions:
        if not q.options and q.answer_type in (AnswerType.SINGLE, AnswerType.MULTI):
            unknown = [a for a in q.accepted if str(a) not in labels]
            if unknown:
                errors.append(f"Question {q.identifier} accepts {unknown!r}, which is not in the test's labels.")
    if errors:
        raise InvalidTest(" ".join(errors))
    test.questions.all().delete()
    Question.objects.bulk_create(
        [
            Question(
                test=test,
                position=position,
                identifier=q.identifier,
                title=q.title,
                prompt=q.prompt,
                payload=dict(q.payload),
                answer_type=q.answer_type,
                options=[{"value": o.value, "label": o.label} for o in q.options],
                accepted=list(q.accepted),
                points=q.points,
                tolerance=q.tolerance,
            )
            for position, q in enumerate(questions, start=1)
        ]
    )


def question_specs(test: QualificationTest) -> list[QuestionSpec]:
    """A test's questions as specs (to copy them into a new version or export them)."""
    return [
        QuestionSpec(
            identifier=q.identifier,
            prompt=q.prompt,
            answer_type=q.answer_type,
            title=q.title,
            payload=dict(q.payload),
            options=tuple(OptionSpec(value=str(o["value"]), label=str(o["label"])) for o in q.options),
            accepted=tuple(q.accepted),
            points=q.points,
            tolerance=q.tolerance,
        )
        for q in test.questions.order_by("position")
    ]


def _free_slug(name: str) -> str:
    base = slugify(name)[:70] or "test"
    slug, n = base, 1
    while QualificationTest.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def create_test(
    *, actor: Actor, name: str, questions: Sequence[QuestionSpec], created_by: Any = None, **fields: Any
) -> QualificationTest:
    """A new test family at version 1 with its questions."""
    _check_fields(fields)
    with transaction.atomic():
        test = QualificationTest(name=name, slug=_free_slug(name), created_by=created_by, **fields)
        _full_clean(test)
        test.save()
        _save_questions(test, questions)
        record_audit_event(
            actor=actor,
            action="qualification.test_created",
            object_type=TEST_OBJECT,
            object_id=test.pk,
            after=_test_snapshot(test),
        )
    return test


def create_new_version(
    *,
    test: QualificationTest,
    actor: Actor,
    changes: Mapping[str, Any] | None = None,
    questions: Sequence[QuestionSpec] | None = None,
) -> QualificationTest:
    """Copy the current version of a test (with ``changes`` and ``questions`` applied) as the next
    version, which becomes current. Attempts and grants keep pointing at the version they were made on."""
    changes = dict(changes or {})
    _check_fields(changes)
    with transaction.atomic():
        old = QualificationTest.objects.select_for_update().get(pk=test.pk)
        if QualificationTest.objects.filter(pk=old.pk, is_current=True).update(is_current=False) != 1:
            raise QualificationError(f"Version {old.version} of “{old.name}” is not the current version.")
        copied = questions if questions is not None else question_specs(old)
        latest = QualificationTest.objects.filter(slug=old.slug).order_by("-version").values_list("version", flat=True)
        new = QualificationTest(
            **{name: getattr(old, name) for name in EDITABLE_FIELDS},
            slug=old.slug,
            version=latest[0] + 1,
            root_id=old.family_id,
            previous=old,
            is_current=True,
            created_by=old.created_by,
        )
        for name, value in changes.items():
            setattr(new, name, value)
        _full_clean(new)
        new.save()
        _save_questions(new, copied)
        record_audit_event(
            actor=actor,
            action="qualification.test_versioned",
            object_type=TEST_OBJECT,
            object_id=new.pk,
            before={"test": old.pk, "version": old.version},
            after={"test": new.pk, **_test_snapshot(new)},
        )
    return new


def edit_test(
    *,
    test: QualificationTest,
    actor: Actor,
    changes: Mapping[str, Any] | None = None,
    questions: Sequence[QuestionSpec] | None = None,
) -> QualificationTest:
    """Edit a test: in place while nobody has attempted it, otherwise as a new version (returned)."""
    changes = dict(changes or {})
    _check_fields(changes)
    with transaction.atomic():
        locked = QualificationTest.objects.select_for_update().get(pk=test.pk)
        if not locked.is_current:
            raise QualificationError(f"Version {locked.version} of “{locked.name}” is not the current version.")
        if Attempt.objects.filter(test=locked).exists():
            return create_new_version(test=locked, actor=actor, changes=changes, questions=questions)
        before = _test_snapshot(locked)
        for name, value in changes.items():
            setattr(locked, name, value)
        _full_clean(locked)
        locked.save()
        if questions is not None:
            _save_questions(locked, questions)
        record_audit_event(
            actor=actor,
            action="qualification.test_edited",
            object_type=TEST_OBJECT,
            object_id=locked.pk,
            before=before,
            after=_test_snapshot(locked),
        )
    return locked


# --- attempts -------------------------------------------------------------------------------------


def attempt_allowance(
    *, test: QualificationTest, attempts: Sequence[Attempt], live_grant: Grant | None, now: datetime
) -> AttemptAllowance:
    """The policy ``attempt_policy`` applied to a worker's attempts at ``test`` and their live grant there."""
    return attempt_policy(
        test_name=test.name,
        is_open=test.is_active and test.is_current,
        max_attempts=test.max_attempts,
        retry_delay=test.retry_delay,
        # an open attempt past its deadline is over, though not yet marked expired (start_attempt does that)
        attempt_ends=[
            a.submitted_at or a.deadline for a in attempts if a.state != AttemptState.OPEN or a.deadline <= now
        ],
        attempts_used=len(attempts),
        passed_score=live_grant.score if live_grant is not None else None,
        now=now,
    )


def start_attempt(*, test: QualificationTest, worker: Worker, now: datetime | None = None) -> Attempt:
    """Start an attempt (or return the worker's open one). Refuses while the retry delay runs, when the
    attempts are used up, when the worker already holds a live grant, or the test is closed."""
    now = now or timezone.now()
    with transaction.atomic():  # committed on its own: an expired attempt stays expired even if we refuse
        expire_overdue_for_worker(worker=worker, test=test, now=now)
    with transaction.atomic():
        test = QualificationTest.objects.get(pk=test.pk)
        attempts = list(Attempt.objects.filter(worker=worker, test=test))
        open_attempt = next((a for a in attempts if a.state == AttemptState.OPEN), None)
        if open_attempt is not None:
            return open_attempt
        live_grant = Grant.objects.filter(worker=worker, test=test, revoked_at__isnull=True).first()
        allowance = attempt_allowance(test=test, attempts=attempts, live_grant=live_grant, now=now)
        if allowance.refusal:
            raise AttemptRefused(allowance.refusal)
        try:
            with transaction.atomic():
                attempt = Attempt.objects.create(
                    worker=worker,
                    test=test,
                    number=allowance.attempts_used + 1,
                    started_at=now,
                    deadline=now + test.time_limit,
                )
        except IntegrityError as exc:
            raise AttemptRefused("Another attempt at this test was started at the same moment; reload.") from exc
        record_audit_event(
            actor=Actor.from_worker(worker),
            action="qualification.attempt_started",
            object_type=ATTEMPT_OBJECT,
            object_id=attempt.pk,
            after={"test": test.pk, "version": test.version, "number": attempt.number, "deadline": attempt.deadline},
        )
    return attempt


def _clean_answers(questions: Sequence[Question], answers: Mapping[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for q in questions:
        value = answers.get(q.identifier)
        if value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        # NUL cannot be stored in PostgreSQL's jsonb (nor mean anything in an answer): it is dropped
        strings = [str(v).replace("\x00", "")[:MAX_ANSWER_LENGTH] for v in values if isinstance(v, str | int | float)][
            :100
        ]
        if q.answer_type == AnswerType.MULTI:
            cleaned[q.identifier] = sorted(set(strings))
        elif strings:
            cleaned[q.identifier] = strings[0]
    return cleaned


def grade_attempt_answers(
    test: QualificationTest, questions: Sequence[Question], answers: Mapping[str, Any]
) -> tuple[float, dict[str, float]]:
    """The 0-100 score and the credit per question identifier."""
    partial = test.multilabel_scoring == MultilabelScoring.JACCARD
    credits = {
        q.identifier: grade_answer(
            q.answer_type, answers.get(q.identifier), q.accepted, tolerance=q.tolerance, partial=partial
        )
        for q in questions
    }
    return score_percent((credits[q.identifier], q.points) for q in questions), credits


def submit_attempt(
    *, attempt: Attempt, worker: Worker, answers: Mapping[str, Any], now: datetime | None = None
) -> Attempt:
    """Grade and close an open attempt. Past its deadline (plus ``SUBMIT_GRACE``) the answers are refused
    and the attempt is closed as expired. Passing creates or renews the worker's grant for this version."""
    now = now or timezone.now()
    actor = Actor.from_worker(worker)
    with transaction.atomic():
        current = Attempt.objects.select_related("test").filter(pk=attempt.pk, worker=worker).first()
        if current is None:
            raise AttemptRefused("That attempt is not yours.")
        if current.state != AttemptState.OPEN:
            raise AttemptRefused("This attempt is already closed.")
        expired = now > current.deadline + SUBMIT_GRACE and expire_attempt(current, actor)
    if expired:
        raise AttemptRefused("Time ran out before you submitted; this attempt counts as failed.")
    with transaction.atomic():
        test = current.test
        questions = list(test.questions.order_by("position"))
        cleaned = _clean_answers(questions, answers)
        score, credits = grade_attempt_answers(test, questions, cleaned)
        passed = score >= test.pass_score
        closed = Attempt.objects.filter(pk=current.pk, state=AttemptState.OPEN).update(
            state=AttemptState.SUBMITTED, submitted_at=now, score=score, passed=passed, answers=cleaned, credits=credits
        )
        if closed != 1:
            raise AttemptRefused("This attempt is already closed.")
        record_audit_event(
            actor=actor,
            action="qualification.attempt_submitted",
            object_type=ATTEMPT_OBJECT,
            object_id=current.pk,
            before={"state": AttemptState.OPEN},
            after={"state": AttemptState.SUBMITTED, "score": score, "passed": passed, "version": test.version},
        )
        if passed:
            _grant(worker=worker, test=test, attempt=current, score=score, now=now, actor=actor, keep_best=True)
    current.refresh_from_db()
    return current


def _grant(
    *,
    worker: Worker,
    test: QualificationTest,
    attempt: Attempt | None,
    score: float,
    now: datetime,
    actor: Actor,
    keep_best: bool = False,
) -> Grant:
    """Create or renew the worker's grant at ``test``. ``keep_best``: a retake that passes with a lower
    score than the live grant leaves the grant as it is."""
    values = {"family_id": test.family_id, "version": test.version, "score": score, "attempt": attempt}
    grant = Grant.objects.select_for_update().filter(worker=worker, test=test).first()
    before: dict[str, Any] = {}
    if keep_best and grant is not None and grant.revoked_at is None and grant.score >= score:
        return grant
    if grant is None:
        grant = Grant.objects.create(worker=worker, test=test, granted_at=now, **values)
    else:
        before = {"score": grant.score, "revoked_at": grant.revoked_at}
        Grant.objects.filter(pk=grant.pk).update(granted_at=now, revoked_at=None, revoked_reason="", **values)
        grant.refresh_from_db()
    record_audit_event(
        actor=actor,
        action="qualification.granted",
        object_type=GRANT_OBJECT,
        object_id=grant.pk,
        before=before,
        after={"worker": worker.pk, "test": test.pk, "family": test.family_id, "version": test.version, "score": score},
    )
    return grant


def grant_revoked_event(grant: Grant, *, actor: Actor, reason: str, now: datetime) -> QueuedEvent:
    """The audit event of one revoked grant (the same whether revoked alone or with others)."""
    return QueuedEvent(
        actor=actor,
        action="qualification.revoked",
        object_type=GRANT_OBJECT,
        object_id=grant.pk,
        before={"revoked_at": None},
        after={"revoked_at": now, "worker": grant.worker_id, "test": grant.test_id},
        reason=reason,
    )


def revoke_grant(*, grant: Grant, actor: Actor, reason: str, now: datetime | None = None) -> Grant:
    """Revoke a live grant; the worker may then take the test again (within its attempt limit). Nothing else
    changes: requirements read live grants when work is handed out. Many at once: ``services_bulk.revoke_grants``."""
    now = now or timezone.now()
    with transaction.atomic():
        revoked = Grant.objects.filter(pk=grant.pk, revoked_at__isnull=True).update(
            revoked_at=now, revoked_reason=reason[:255]
        )
        if revoked != 1:
            raise QualificationError("That qualification is already revoked.")
        record_audit_events([grant_revoked_event(grant, actor=actor, reason=reason, now=now)])
    grant.refresh_from_db()
    return grant


def record_test_saved(
    *, test: QualificationTest, actor: Actor, created: bool, before: dict[str, Any] | None = None
) -> None:
    """Audit a test saved through the admin's form (the form itself wrote the rows); ``before`` is
    ``lock_test_snapshot`` taken before the form saved."""
    with transaction.atomic():
        record_audit_event(
            actor=actor,
            action="qualification.test_created" if created else "qualification.test_edited",
            object_type=TEST_OBJECT,
            object_id=test.pk,
            before=before,
            after=_test_snapshot(test),
        )


def grant_qualification(
    *, worker: Worker, test: QualificationTest, score: float, actor: Actor, now: datetime | None = None
) -> Grant:
    """Grant ``test`` to ``worker`` without an attempt (a policy's decision, e.g. "trusted"); audited."""
    if not 0 <= score <= 100:
        raise QualificationError("A qualification score must be between 0 and 100.")
    with transaction.atomic():
        return _grant(worker=worker, test=test, attempt=None, score=score, now=now or timezone.now(), actor=actor)
