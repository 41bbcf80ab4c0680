"""``{{ amount|money }}``: a money amount as people read it, exactly (Decimal, never float).

Whole cents show two decimals (``0.0200`` -> ``0.02``, ``12`` -> ``12.00``); amounts with fractions of a
cent keep them, up to the four places the ledger stores (``0.0125`` stays ``0.0125``), so a sub-cent reward
is never shown rounded to a price it is not. Anything that is not a number is shown as it is.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django import template

from tasks.services.budget import exact

register = template.Library()

CENT = Decimal("0.01")


@register.filter
def money(value: Any) -> Any:
    if value is None or value == "" or isinstance(value, bool):
        return value
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return value
    if not amount.is_finite():
        return value
    fine = exact(amount)  # the ledger's 4 places
    cents = fine.quantize(CENT, ROUND_HALF_UP)
    shown = cents if cents == fine else fine.normalize()
    return f"{shown:f}"


@register.filter
def cost_kind(value: Any) -> str:
    """A ledger kind as people read it (``internal_pay`` -> ``Internal pay``)."""
    from tasks.models import CostKind

    try:
        return str(CostKind(value).label)
    except ValueError:
        return str(value)
