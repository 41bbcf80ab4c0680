"""Typed environment helpers (config/env.py). Pure functions: no database."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str, parse_database_url

BASE = Path("/srv/crowdops")


# --- parse_database_url: PostgreSQL ---------------------------------------------------------------


def test_a_postgres_url_becomes_a_full_database_entry() -> None:
    db = parse_database_url("postgres://crowd:s3cret@db.internal:6543/crowdops", base_dir=BASE)
    assert db == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "crowdops",
        "USER": "crowd",
        "PASSWORD": "s3cret",
        "HOST": "db.internal",
        "PORT": "6543",
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": False,
        "OPTIONS": {},
    }


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "pgsql"])
def test_every_postgres_scheme_spelling_is_accepted(scheme: str) -> None:
    db = parse_database_url(f"{scheme}://u@h/name", base_dir=BASE)
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert db["NAME"] == "name"


def test_a_postgres_url_without_password_or_port_leaves_them_empty() -> None:
    db = parse_database_url("postgres://postgres@127.0.0.1/crowdops_t2", base_dir=BASE)
    assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == ("postgres", "", "127.0.0.1", "")


def test_percent_encoded_credentials_and_names_are_decoded() -> None:
    db = parse_database_url("postgres://us%40er:p%40ss%3Aw%2Frd@host/my%20db", base_dir=BASE)
    assert (db["USER"], db["PASSWORD"], db["NAME"]) == ("us@er", "p@ss:w/rd", "my db")


def test_query_parameters_become_options_and_conn_max_age_is_read() -> None:
    db = parse_database_url("postgres://u@h/db?sslmode=require&conn_max_age=0&application_name=web", base_dir=BASE)
    assert db["CONN_MAX_AGE"] == 0
    assert db["OPTIONS"] == {"sslmode": "require", "application_name": "web"}


def test_a_postgres_url_without_a_database_name_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="must name a database"):
        parse_database_url("postgres://u@h/", base_dir=BASE)


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u@h/db?conn_max_age=forever",
        "postgres://u@h:notaport/db",
    ],
)
def test_an_unparsable_number_in_a_postgres_url_is_an_improperly_configured_error_naming_database_url(
    url: str,
) -> None:
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        parse_database_url(url, base_dir=BASE)


# --- parse_database_url: SQLite -------------------------------------------------------------------


def test_a_relative_sqlite_path_is_resolved_against_the_base_dir() -> None:
    db = parse_database_url("sqlite:///var/db.sqlite3", base_dir=BASE)
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["NAME"] == str(BASE / "var" / "db.sqlite3")
    assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_an_absolute_sqlite_path_is_kept(tmp_path: Path) -> None:
    db = parse_database_url(f"sqlite:///{tmp_path}/crowd.db", base_dir=BASE)
    assert db["NAME"] == f"{tmp_path}/crowd.db"
    assert Path(db["NAME"]).is_absolute()


def test_an_absolute_sqlite_path_with_four_slashes_is_kept() -> None:
    assert parse_database_url("sqlite:////tmp/crowd.db", base_dir=BASE)["NAME"] == "/tmp/crowd.db"


def test_an_sqlite_url_without_a_path_uses_the_default_file() -> None:
    assert parse_database_url("sqlite://", base_dir=BASE)["NAME"] == str(BASE / "var" / "db.sqlite3")


@pytest.mark.parametrize("url", ["mysql://u@h/db", "redis://localhost:6379/0", "db.sqlite3", ""])
def test_an_unsupported_scheme_is_refused(url: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"DATABASE_URL scheme .* is not supported"):
        parse_database_url(url, base_dir=BASE)


# --- env_bool, env_int, env_list, env_str ---------------------------------------------------------


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", " yes ", "on"])
def test_env_bool_reads_true_values(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("CROWD_FLAG", raw)
    assert env_bool("CROWD_FLAG", False) is True


@pytest.mark.parametrize("raw", ["0", "false", "No", "off", ""])
def test_env_bool_reads_false_values(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("CROWD_FLAG", raw)
    assert env_bool("CROWD_FLAG", True) is False


def test_env_bool_falls_back_to_the_default_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CROWD_FLAG", raising=False)
    assert env_bool("CROWD_FLAG", True) is True
    assert env_bool("CROWD_FLAG", False) is False


def test_env_bool_error_names_the_variable_and_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROWD_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured) as caught:
        env_bool("CROWD_FLAG", False)
    assert "CROWD_FLAG" in str(caught.value)
    assert "'maybe'" in str(caught.value)


def test_env_int_reads_an_integer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROWD_COUNT", "42")
    assert env_int("CROWD_COUNT", 7) == 42


def test_env_int_uses_the_default_when_unset_or_blank(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CROWD_COUNT", raising=False)
    assert env_int("CROWD_COUNT", 7) == 7
    monkeypatch.setenv("CROWD_COUNT", "  ")
    assert env_int("CROWD_COUNT", 7) == 7


@pytest.mark.parametrize("raw", ["ten", "1.5", "0x10"])
def test_env_int_error_names_the_variable_and_the_value(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("CROWD_COUNT", raw)
    with pytest.raises(ImproperlyConfigured) as caught:
        env_int("CROWD_COUNT", 7)
    assert "CROWD_COUNT" in str(caught.value)
    assert repr(raw) in str(caught.value)


def test_env_list_splits_on_commas_and_drops_blanks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROWD_HOSTS", " a.example , b.example,, ")
    assert env_list("CROWD_HOSTS", ["default"]) == ["a.example", "b.example"]
    monkeypatch.delenv("CROWD_HOSTS")
    assert env_list("CROWD_HOSTS", ["default"]) == ["default"]


def test_env_str_distinguishes_unset_from_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CROWD_NAME", raising=False)
    assert env_str("CROWD_NAME", "fallback") == "fallback"
    monkeypatch.setenv("CROWD_NAME", "")
    assert env_str("CROWD_NAME", "fallback") == ""


def test_health_checks_are_opt_in_per_url() -> None:
    on = parse_database_url("postgres://u@h/db?health_checks=1&sslmode=require", base_dir=Path("/srv"))
    assert on["CONN_HEALTH_CHECKS"] is True
    assert on["OPTIONS"] == {"sslmode": "require"}
