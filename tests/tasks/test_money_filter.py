"""The ``money`` template filter: exact amounts, two decimals for whole cents, sub-cent amounts kept."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.template import Context, Template

from tasks.templatetags.money import money


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("0.0200"), "0.02"),
        (Decimal("12"), "12.00"),
        (Decimal("0.0125"), "0.0125"),  # a sub-cent reward is not shown as a price it is not
        (Decimal("4.73999999999999"), "4.74"),  # a float-ish SQLite sum, back to the ledger's places
        (Decimal("1E+3"), "1000.00"),
        (Decimal("-0.5"), "-0.50"),
        ("0.3", "0.30"),
    ],
)
def test_amounts(value: object, shown: str) -> None:
    assert money(value) == shown


@pytest.mark.parametrize("value", [None, "", "n/a", Decimal("NaN"), True])
def test_what_is_not_an_amount_is_shown_as_it_is(value: object) -> None:
    assert money(value) is value


def test_the_filter_in_a_template() -> None:
    html = Template("{% load money %}{{ a|money }} {{ b|money|default:'-' }}").render(Context({"a": Decimal("0.05")}))
    assert html == "0.05 -"


def test_ledger_kinds_read_as_words() -> None:
    from tasks.templatetags.money import cost_kind

    assert cost_kind("internal_pay") == "Internal pay" and cost_kind("marketplace_fee") == "Marketplace fee"
    assert cost_kind("something_new") == "something_new"
