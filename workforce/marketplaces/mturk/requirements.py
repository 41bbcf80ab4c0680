"""QualificationRequirements for a HIT type, from plain values (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workforce.marketplaces.base import MarketplaceError
from workforce.marketplaces.mturk.config import LOCALE, NUMBER_HITS_APPROVED, PERCENT_APPROVED

ACCESS_GUARD = "DiscoverPreviewAndAccept"


@dataclass(frozen=True)
class Requirements:
    """Who may work on a HIT type. ``tests`` pairs our tests' QualificationTypeIds with a minimum score;
    ``soft_block_type_id`` keeps out every worker holding that (block) qualification."""

    masters: bool = False
    min_percent_approved: int | None = None
    min_hits_approved: int | None = None
    locales: Sequence[str] = ()
    tests: Sequence[tuple[str, int]] = ()
    soft_block_type_id: str = ""
    extra: Sequence[Mapping[str, Any]] = field(default_factory=tuple)


def _locale(code: str) -> dict[str, str]:
    country, _, subdivision = code.upper().partition("-")
    if len(country) != 2 or not country.isalpha():
        raise MarketplaceError(f"Locale {code!r} is not an ISO 3166 country code (e.g. US or US-NY).", permanent=True)
    return {"Country": country, **({"Subdivision": subdivision} if subdivision else {})}


def build_requirements(requirements: Requirements, *, masters_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if requirements.masters:
        out.append({"QualificationTypeId": masters_id, "Comparator": "Exists", "ActionsGuarded": ACCESS_GUARD})
    if requirements.min_percent_approved is not None:
        percent = int(requirements.min_percent_approved)
        if not 0 <= percent <= 100:
            raise MarketplaceError("The approval rate requirement must be between 0 and 100.", permanent=True)
        out.append(
            {
                "QualificationTypeId": PERCENT_APPROVED,
                "Comparator": "GreaterThanOrEqualTo",
                "IntegerValues": [percent],
                "ActionsGuarded": ACCESS_GUARD,
            }
        )
        # A new worker's approval rate reads 100%: pair it with a count, as MTurk recommends.
        out.append(
            {
                "QualificationTypeId": NUMBER_HITS_APPROVED,
                "Comparator": "GreaterThanOrEqualTo",
                "IntegerValues": [int(requirements.min_hits_approved or 100)],
                "ActionsGuarded": ACCESS_GUARD,
            }
        )
    elif requirements.min_hits_approved is not None:
        out.append(
            {
                "QualificationTypeId": NUMBER_HITS_APPROVED,
                "Comparator": "GreaterThanOrEqualTo",
                "IntegerValues": [int(requirements.min_hits_approved)],
                "ActionsGuarded": ACCESS_GUARD,
            }
        )
    if requirements.locales:
        out.append(
            {
                "QualificationTypeId": LOCALE,
                "Comparator": "In" if len(requirements.locales) > 1 else "EqualTo",
                "LocaleValues": [_locale(code) for code in requirements.locales],
                "ActionsGuarded": ACCESS_GUARD,
            }
        )
    for type_id, min_score in requirements.tests:
        out.append(
            {
                "QualificationTypeId": type_id,
                "Comparator": "GreaterThanOrEqualTo",
                "IntegerValues": [int(min_score)],
                "ActionsGuarded": ACCESS_GUARD,
            }
        )
    if requirements.soft_block_type_id:
        out.append(
            {
                "QualificationTypeId": requirements.soft_block_type_id,
                "Comparator": "DoesNotExist",
                "ActionsGuarded": ACCESS_GUARD,
            }
        )
    out.extend(dict(r) for r in requirements.extra)
    if len(out) > 10:
        raise MarketplaceError("MTurk accepts at most 10 qualification requirements per HIT type.", permanent=True)
    return out


def requirement_type_ids(requirements: Iterable[Mapping[str, Any]]) -> list[str]:
    return [str(r["QualificationTypeId"]) for r in requirements]
