"""Qualification reads: grant scores for requirement checks, the worker's test list, page data."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Max, Q
from django.utils import timezone

from qualification.models import Attempt, AttemptState, Grant, QualificationTest, Question
from qualification.policies import AttemptAllowance, required_test_ids, unmet_requirements, validate_requirements
from qualification.services import attempt_allowance
from workforce.models import Worker


def _family_ids(test_ids: Iterable[int]) -> dict[int, int]:
    """test id -> the id of its family's version 1."""
    rows = QualificationTest.objects.filter(pk__in=list(test_ids)).values_list("pk", "root_id")
    return {pk: root_id or pk for pk, root_id in rows}


def worker_grant_scores(worker: Worker) -> dict[int, float]:
    """The worker's best live grant score per test family, keyed by *every* version's id of that family
    (the root's id included), so a requirement naming any version of a test finds it. Two queries."""
    best = dict(
        Grant.objects.filter(worker=worker, revoked_at__isnull=True)
        .values("family_id")
        .annotate(best=Max("score"))
        .values_list("family_id", "best")
    )
    if not best:
        return {}
    scores: dict[int, float] = {}
    for pk, root_id in QualificationTest.objects.filter(Q(pk__in=best) | Q(root_id__in=best)).values_list(
        "pk", "root_id"
    ):
        scores[pk] = float(best[root_id or pk])
    return scores


def get_test_names(test_ids: Iterable[int]) -> dict[int, str]:
    return dict(QualificationTest.objects.filter(pk__in=list(test_ids)).values_list("pk", "name"))


def unmet_requirements_for_worker(
    *, worker: Worker, requirements: list[dict[str, Any]], approved_assignments: int
) -> list[str]:
    """Sentences for the requirements ``worker`` does not meet (empty: the worker qualifies).

    ``approved_assignments`` comes from the caller (the tasks app counts them)."""
    if not requirements:
        return []
    return unmet_requirements(
        requirements,
        grants=worker_grant_scores(worker),
        is_blocked=worker.is_blocked,
        approved_assignments=approved_assignments,
        test_names=get_test_names(required_test_ids(requirements)),
    )


def validate_job_requirements(requirements: object) -> list[str]:
    """``validate_requirements`` plus a check that every named test exists."""
    errors = validate_requirements(requirements)
    if errors or not isinstance(requirements, list):
        return errors
    wanted = required_test_ids(requirements)
    found = set(QualificationTest.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    return [f"There is no qualification test with id {test_id}." for test_id in wanted if test_id not in found]


@dataclass(frozen=True)
class TestCard:
    """One line of the worker's test list."""

    test: QualificationTest
    best_score: float | None
    passed_version: int | None
    allowance: AttemptAllowance
    open_attempt: Attempt | None
    last_attempt: Attempt | None

    @property
    def can_start(self) -> bool:
        return self.open_attempt is not None or not self.allowance.refusal


def list_tests_for_worker(worker: Worker, *, now: datetime | None = None) -> list[TestCard]:
    """The current, active tests with the worker's status at each. Three queries."""
    now = now or timezone.now()
    tests = list(QualificationTest.objects.filter(is_current=True, is_active=True).order_by("name"))
    attempts: dict[int, list[Attempt]] = defaultdict(list)
    for attempt in Attempt.objects.filter(worker=worker, test__in=tests).order_by("number"):
        attempts[attempt.test_id].append(attempt)
    grants: dict[int, list[Grant]] = defaultdict(list)
    for grant in Grant.objects.filter(
        worker=worker, revoked_at__isnull=True, family_id__in=[t.family_id for t in tests]
    ):
        grants[grant.family_id].append(grant)
    cards = []
    for test in tests:
        family_grants = grants.get(test.family_id, [])
        best = max(family_grants, key=lambda g: g.score, default=None)
        this_version = next((g for g in family_grants if g.test_id == test.pk), None)
        mine = attempts.get(test.pk, [])
        open_attempt = next((a for a in mine if a.state == AttemptState.OPEN and a.deadline > now), None)
        cards.append(
            TestCard(
                test=test,
                best_score=best.score if best else None,
                passed_version=best.version if best else None,
                allowance=attempt_allowance(test=test, attempts=mine, live_grant=this_version, now=now),
                open_attempt=open_attempt,
                last_attempt=mine[-1] if mine else None,
            )
        )
    return cards


def get_worker_attempt(worker: Worker, attempt_uuid: Any) -> Attempt | None:
    return Attempt.objects.select_related("test").filter(uuid=attempt_uuid, worker=worker).first()


@dataclass(frozen=True)
class PageQuestion:
    """What the test page may show of a question: never its accepted answers."""

    identifier: str
    title: str
    prompt: str
    text: str
    image_url: str
    media: list[dict[str, Any]]
    answer_type: str
    options: list[tuple[str, str]]


def _safe_url(value: object, *, image: bool = False) -> str:
    """Only http(s) URLs reach a page (no ``javascript:`` links from imported tests); an image may also be a
    ``data:image/`` URI, as task items may (shown in an ``<img>``, where it cannot run script)."""
    url = str(value or "").strip()
    allowed = ("https://", "http://", "data:image/") if image else ("https://", "http://")
    return url if url.lower().startswith(allowed) else ""


def questions_for_page(test: QualificationTest) -> list[PageQuestion]:
    labels = [(str(label), str(label)) for label in test.labels]
    page = []
    for q in (
        Question.objects.filter(test=test)
        .order_by("position")
        .only("identifier", "title", "prompt", "payload", "answer_type", "options")
    ):
        payload = q.payload if isinstance(q.payload, dict) else {}
        media = payload.get("media")
        page.append(
            PageQuestion(
                identifier=q.identifier,
                title=q.title,
                prompt=q.prompt,
                text=str(payload.get("text", "")),
                image_url=_safe_url(payload.get("image_url"), image=True),
                media=[
                    {**m, "url": _safe_url(m.get("url"))}
                    for m in (media if isinstance(media, list) else [])
                    if isinstance(m, dict) and _safe_url(m.get("url"))
                ],
                answer_type=q.answer_type,
                options=[(str(o["value"]), str(o["label"])) for o in q.options] or labels,
            )
        )
    return page
