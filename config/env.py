"""Typed helpers that read settings from the environment.

Every helper raises ``ImproperlyConfigured`` with a sentence naming the variable when a value cannot
be parsed, so a typo in deployment fails at start-up instead of surfacing later as odd behaviour.
"""

from __future__ import annotations

import logging
import math
import os
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None else value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false, yes/no), got {raw!r}.")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}.") from exc


def env_float(name: str, default: float) -> float:
    """A finite number such as ``5`` or ``0.5``; empty or unset gives ``default``."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ImproperlyConfigured(f"{name} must be a number such as 5 or 0.5, got {raw!r}.")
    return value


def env_decimal(name: str, default: Decimal | None = None) -> Decimal | None:
    """A non-negative amount such as ``7.25`` (money: never a float); empty or unset gives ``default``."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0:
        raise ImproperlyConfigured(f"{name} must be a non-negative amount such as 7.25, got {raw!r}.")
    return value


def env_log_level(name: str, default: str) -> str:
    """A logging level name (DEBUG, INFO, WARNING, ERROR, CRITICAL), case-insensitive; returned upper-case."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    level = raw.strip().upper()
    names = [n for n in logging.getLevelNamesMapping() if n not in ("NOTSET", "WARN", "FATAL")]
    if level not in logging.getLevelNamesMapping():
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(names)}, got {raw!r}.")
    return level


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


_ENGINES = {
    "postgres": "django.db.backends.postgresql",
    "postgresql": "django.db.backends.postgresql",
    "pgsql": "django.db.backends.postgresql",
    "sqlite": "django.db.backends.sqlite3",
}


def parse_database_url(url: str, *, base_dir: Path) -> dict[str, Any]:
    """Turn ``postgres://user:pw@host:port/name?opt=v`` or ``sqlite:///path`` into a DATABASES entry."""
    parts = urlsplit(url)
    engine = _ENGINES.get(parts.scheme)
    if engine is None:
        raise ImproperlyConfigured(
            f"DATABASE_URL scheme {parts.scheme!r} is not supported; use postgres:// or sqlite:///."
        )
    if engine.endswith("sqlite3"):
        path = unquote(parts.path)
        # sqlite:///relative/path.db or sqlite:////absolute/path.db, as dj-database-url reads them
        path = path[1:] if path.startswith("/") else path
        name = path or str(base_dir / "var" / "db.sqlite3")
        if not Path(name).is_absolute():
            name = str(base_dir / name)
        return {
            "ENGINE": engine,
            "NAME": name,
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
        }
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured("DATABASE_URL must name a database, e.g. postgres://user@host/dbname.")
    options: dict[str, Any] = dict(parse_qsl(parts.query))
    raw_age = options.pop("conn_max_age", "60")
    health_checks = options.pop("health_checks", "0").lower() in _TRUE
    if "server_side_binding" in options:  # psycopg 3: bind parameters on the server (prepared statements)
        options["server_side_binding"] = options["server_side_binding"].lower() in _TRUE
    try:
        conn_max_age = int(raw_age)
        if "prepare_threshold" in options:
            options["prepare_threshold"] = int(options["prepare_threshold"])
        port = parts.port
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL has an invalid port or conn_max_age ({exc}).") from exc
    return {
        "ENGINE": engine,
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(port or ""),
        "CONN_MAX_AGE": conn_max_age,
        # A health check costs one query per request; off by default, on with ?health_checks=1.
        "CONN_HEALTH_CHECKS": health_checks,
        "OPTIONS": options,
    }
