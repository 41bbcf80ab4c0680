"""Ops audit findings 7 and 8: a malformed FAIR_PAY_MIN_HOURLY, MTURK_REQUESTS_PER_SECOND or LOG_LEVEL stops
start-up with an ImproperlyConfigured sentence naming the variable and what it expects."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_decimal, env_float, env_log_level
from tests.config.test_settings import load_settings, settings_values


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("FAIR_PAY_MIN_HOURLY", "ten", "FAIR_PAY_MIN_HOURLY must be a non-negative amount such as 7.25, got 'ten'."),
        ("FAIR_PAY_MIN_HOURLY", "-3", "FAIR_PAY_MIN_HOURLY must be a non-negative amount such as 7.25, got '-3'."),
        (
            "MTURK_REQUESTS_PER_SECOND",
            "fast",
            "MTURK_REQUESTS_PER_SECOND must be a number such as 5 or 0.5, got 'fast'.",
        ),
        ("LOG_LEVEL", "VERBOSE", "LOG_LEVEL must be one of CRITICAL, ERROR, WARNING, INFO, DEBUG, got 'VERBOSE'."),
    ],
)
def test_a_malformed_value_stops_start_up_with_a_sentence_naming_the_variable(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    result = load_settings(tmp_path, [name], **{name: value})
    assert result.returncode != 0
    assert f"django.core.exceptions.ImproperlyConfigured: {expected}" in result.stderr


def test_well_formed_values_are_read_as_their_types(tmp_path: Path) -> None:
    values = settings_values(
        tmp_path,
        ["FAIR_PAY_MIN_HOURLY", "MTURK_REQUESTS_PER_SECOND", "LOGGING"],
        FAIR_PAY_MIN_HOURLY="7.25",
        MTURK_REQUESTS_PER_SECOND="0.5",
        LOG_LEVEL="warning",
    )
    assert values["FAIR_PAY_MIN_HOURLY"] == "7.25" and values["MTURK_REQUESTS_PER_SECOND"] == 0.5
    assert values["LOGGING"]["root"]["level"] == "WARNING"  # type: ignore[index]


def test_the_helpers_fall_back_to_their_defaults_when_unset_or_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("X_AUDIT", raising=False)
    assert (env_decimal("X_AUDIT"), env_float("X_AUDIT", 5.0), env_log_level("X_AUDIT", "INFO")) == (None, 5.0, "INFO")
    monkeypatch.setenv("X_AUDIT", " ")
    assert (env_decimal("X_AUDIT"), env_float("X_AUDIT", 5.0), env_log_level("X_AUDIT", "INFO")) == (None, 5.0, "INFO")
    monkeypatch.setenv("X_AUDIT", "15.00")
    assert env_decimal("X_AUDIT") == Decimal("15.00") and env_float("X_AUDIT", 5.0) == 15.0


@pytest.mark.parametrize("value", ["nan", "inf", "Infinity"])
def test_numbers_that_are_not_finite_are_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("X_AUDIT", value)
    with pytest.raises(ImproperlyConfigured, match="X_AUDIT must be a number"):
        env_float("X_AUDIT", 5.0)
    with pytest.raises(ImproperlyConfigured, match="X_AUDIT must be a non-negative amount"):
        env_decimal("X_AUDIT")
