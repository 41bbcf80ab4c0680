"""Shared pieces of the MTurk services: the connector, a job's options, Hit specs and ledger keys."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse

from tasks.models import CostKind, CostStatus, Hit, Job, MTurkQualificationPurpose, MTurkQualificationType
from tasks.services.errors import ServiceError
from tasks.services.ledger import CostLine, record_costs
from workforce.jsonlimits import load_storable
from workforce.marketplaces.base import HitSpec
from workforce.marketplaces.mturk.documents import external_question, html_question
from workforce.marketplaces.mturk.requirements import Requirements, build_requirements
from workforce.marketplaces.registry import get_connector
from workforce.models import Marketplace

if TYPE_CHECKING:
    from workforce.marketplaces.mturk import MTurkMarketplace

MTURK = Marketplace.MTURK
# Our MTurk pages name an item's field by its place in the HIT (``place:1`` is the first item), never by the
# item's external id, which could tell a worker which items are gold. ``item:<external id>`` is what
# pages and HTMLQuestion documents made before used; answers under those names are still read.
PLACE_FIELD_PREFIX = "place:"
ITEM_FIELD_PREFIX = "item:"
CENT = Decimal("0.01")


def mturk_connector(connector: MTurkMarketplace | None = None) -> MTurkMarketplace:
    if connector is not None:
        return connector
    if not settings.MTURK_ENABLED:
        raise ServiceError("MTurk is not enabled here (set MTURK_ENABLED=1; see the README).")
    return cast("MTurkMarketplace", get_connector(MTURK))


@dataclass(frozen=True)
class JobOptions:
    masters: bool
    min_percent_approved: int | None
    min_hits_approved: int | None
    locales: tuple[str, ...]
    question: str
    keywords: tuple[str, ...]
    lifetime: timedelta
    auto_approval_delay: timedelta


def job_options(job: Job) -> JobOptions:
    raw: dict[str, Any] = job.mturk_options if isinstance(job.mturk_options, dict) else {}
    question = str(raw.get("question", "external"))
    if question not in ("external", "html"):
        raise ServiceError('mturk_options "question" must be "external" or "html".')

    def hours(name: str, default: timedelta) -> timedelta:
        value = raw.get(name)
        if value is None:
            return default
        if not isinstance(value, int) or value <= 0:
            raise ServiceError(f'mturk_options "{name}" must be a positive whole number of hours.')
        return timedelta(hours=value)

    def whole(name: str) -> int | None:
        value = raw.get(name)
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ServiceError(f'mturk_options "{name}" must be a whole number of at least 0.')
        return value

    return JobOptions(
        masters=job.requires_masters,
        min_percent_approved=whole("min_percent_approved"),
        min_hits_approved=whole("min_hits_approved"),
        locales=tuple(str(code) for code in raw.get("locales") or ()),
        question=question,
        keywords=tuple(str(k) for k in raw.get("keywords") or ()),
        lifetime=hours("lifetime_hours", settings.MTURK_HIT_LIFETIME),
        auto_approval_delay=hours("auto_approval_hours", settings.MTURK_AUTO_APPROVAL_DELAY),
    )


def mturk_reward(job: Job) -> Decimal:
    if job.currency != "USD":
        raise ServiceError("MTurk pays in USD only; set the job's currency to USD.")
    if job.reward != job.reward.quantize(CENT) or job.reward < CENT:
        raise ServiceError(f"An MTurk reward is a whole number of cents, at least $0.01 (not {job.reward}).")
    return job.reward.quantize(CENT)


def requirement_list(job: Job, options: JobOptions, *, masters_id: str) -> list[dict[str, Any]]:
    """The job's own requirements in MTurk terms: our tests must have been created on MTurk first."""
    tests: list[tuple[str, int]] = []
    min_hits = options.min_hits_approved
    block_type = ""
    for spec in job.requirements or []:
        kind = spec.get("kind") if isinstance(spec, dict) else None
        if kind == "test":
            mapped = MTurkQualificationType.objects.filter(
                purpose=MTurkQualificationPurpose.TEST, test_id=spec.get("test")
            ).first()
            if mapped is None:
                raise ServiceError(
                    f"Qualification test {spec.get('test')} is not on MTurk yet; create its qualification type first."
                )
            tests.append((mapped.type_id, int(spec.get("min_score", 0))))
        elif kind == "approved_assignments":
            min_hits = max(min_hits or 0, int(spec.get("min", 0)))
        elif kind == "not_blocked":
            block = MTurkQualificationType.objects.filter(purpose=MTurkQualificationPurpose.BLOCK).first()
            block_type = block.type_id if block else ""
    requirements = Requirements(
        masters=options.masters,
        min_percent_approved=options.min_percent_approved,
        min_hits_approved=min_hits,
        locales=options.locales,
        tests=tests,
        soft_block_type_id=block_type,
    )
    try:
        return build_requirements(requirements, masters_id=masters_id)
    except Exception as exc:
        raise ServiceError(str(exc)) from exc


def task_page_url() -> str:
    base = settings.MTURK_EXTERNAL_QUESTION_BASE_URL.rstrip("/")
    if not base.startswith("https://"):
        raise ServiceError("Set MTURK_EXTERNAL_QUESTION_BASE_URL to this site's public https address.")
    return base + reverse("mturk-task")


def question_document(job: Job, hit: Hit, options: JobOptions) -> str:
    if options.question == "external":
        return external_question(task_page_url())
    items = list(hit.items.order_by("hit_items__position").values("payload"))
    html = render_to_string(
        "tasks/mturk/html_question.html",
        {"job": job, "items": items, "field_prefix": PLACE_FIELD_PREFIX, "sandbox": settings.MTURK_SANDBOX},
    )
    return html_question(html)


def hit_spec(*, job: Job, hit: Hit, options: JobOptions, requirements: list[dict[str, Any]]) -> HitSpec:
    return HitSpec(
        hit_id=str(hit.uuid),
        title=job.name[:128],
        description=(job.description or job.name)[:2000],
        reward=mturk_reward(job),
        currency="USD",
        max_assignments=job.answers_per_hit,
        assignment_duration=job.assignment_duration,
        lifetime=options.lifetime,
        auto_approval_delay=options.auto_approval_delay,
        keywords=options.keywords,
        question=question_document(job, hit, options),
        qualification_requirements=tuple(requirements),
        extra={"masters": options.masters},
    )


def answers_by_item(job: Job, answers: dict[str, Any], places: Sequence[str]) -> dict[str, Any]:
    """A posted form's fields -> {item external id: value}. ``places`` are the HIT's items' external ids in
    display order: our pages name fields ``place:<n>`` (1 is the first item); ``item:<external id>``
    (pages and documents made before) is read too; multi-label values come as a JSON list. A plain field
    that is not an MTurk form field is taken as an item id. A place the HIT does not have stays keyed
    ``place:<n>``, which matches no item, so the submission is refused rather than misfiled."""
    chosen: dict[str, Any] = {}
    for key, value in answers.items():
        if key.startswith(PLACE_FIELD_PREFIX):
            place = key[len(PLACE_FIELD_PREFIX) :]
            index = int(place) - 1 if place.isascii() and place.isdigit() else -1
            chosen[places[index] if 0 <= index < len(places) else key] = value
        elif key.startswith(ITEM_FIELD_PREFIX):
            chosen[key[len(ITEM_FIELD_PREFIX) :]] = value
    if not chosen:
        chosen = {k: v for k, v in answers.items() if k not in ("assignmentId", "hitId", "workerId")}
    out: dict[str, Any] = {}
    for key, value in chosen.items():
        if job.is_multilabel and isinstance(value, str) and value.startswith("["):
            with contextlib.suppress(ValueError):  # not a JSON list after all: kept as typed
                value = load_storable(value)
        out[key] = value
    return out


def ledger_key(*parts: object) -> str:
    return "mturk:" + ":".join(str(p) for p in parts)


def slot_key(hit: Hit, slot: int | str, kind: str) -> str:
    """The key of one assignment slot's committed reward or fee: ``mturk:hit:<uuid>:slot:<n>:<kind>``."""
    return ledger_key("hit", hit.uuid, "slot", slot, kind)


def commit_hit_slots(
    *, hit: Hit, reward: Decimal, fee: Decimal, slots: range, reference: str, prefix: str = ""
) -> None:
    """Book what MTurk takes from the balance for ``slots`` assignments of ``hit`` (CreateHIT and
    CreateAdditionalAssignmentsForHIT hold reward and fee per assignment) as committed rows, one reward and
    one fee per slot, so each approval can turn exactly one slot into its charged rows (``book_approval_charges``)
    and the ledger's total stays what MTurk took, however many approvals there are. ``prefix`` marks slot
    numbers of slots committed again (``r1``, ``r2``, ...: ``tasks.services.mturk_escrow``)."""
    lines = [
        CostLine(
            job_id=hit.job_id,
            kind=kind,
            amount=amount,
            idempotency_key=slot_key(hit, f"{prefix}{n}", kind),
            marketplace=MTURK,
            status=CostStatus.COMMITTED,
            hit_id=hit.pk,
            reference=reference,
        )
        for n in slots
        for kind, amount in ((CostKind.REWARD, reward), (CostKind.MARKETPLACE_FEE, fee))
    ]
    record_costs(lines)
