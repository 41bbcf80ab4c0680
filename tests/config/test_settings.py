"""config/settings.py read from the environment, each case loaded in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as test_settings

PROBE = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({name: getattr(settings, name, None) for name in %r}, default=str))
"""


def load_settings(tmp_path: Path, names: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    clean.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        VAR_DIR=str(tmp_path / "var"),
        DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
        PYTHONPATH=str(test_settings.BASE_DIR),
    )
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", PROBE % (names,)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=test_settings.BASE_DIR,
        env=clean,
    )


def settings_values(tmp_path: Path, names: list[str], **env: str) -> dict[str, object]:
    result = load_settings(tmp_path, names, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_without_debug_a_secret_key_is_required(tmp_path: Path) -> None:
    result = load_settings(tmp_path, ["SECRET_KEY"], DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY must be set in the environment when DEBUG is off." in result.stderr


def test_without_debug_the_secure_defaults_are_on(tmp_path: Path) -> None:
    values = settings_values(
        tmp_path,
        ["DEBUG", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS"],
        DEBUG="0",
        SECRET_KEY="x" * 50,
    )
    assert values == {
        "DEBUG": False,
        "SECURE_SSL_REDIRECT": True,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SECURE_HSTS_SECONDS": 60 * 60 * 24 * 30,
    }


def test_in_debug_a_local_secret_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    first = settings_values(tmp_path, ["SECRET_KEY"])["SECRET_KEY"]
    second = settings_values(tmp_path, ["SECRET_KEY"])["SECRET_KEY"]
    key_file = tmp_path / "var" / "secret_key"
    assert first == second == key_file.read_text().strip()
    assert len(str(first)) >= 50
    assert key_file.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DEBUG": "perhaps"}, "DEBUG"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL"),
        ({"IMPORT_MAX_REPORTED_ERRORS": "lots"}, "IMPORT_MAX_REPORTED_ERRORS"),
    ],
)
def test_a_bad_setting_stops_start_up_naming_the_variable(tmp_path: Path, env: dict[str, str], named: str) -> None:
    result = load_settings(tmp_path, ["DEBUG"], **env)
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert named in result.stderr


def test_a_postgres_database_url_selects_postgres(tmp_path: Path) -> None:
    values = settings_values(
        tmp_path, ["IS_POSTGRES", "DATABASES"], DATABASE_URL="postgres://crowd@db.internal:5433/crowdops"
    )
    assert values["IS_POSTGRES"] is True
    assert values["DATABASES"]["default"]["HOST"] == "db.internal"  # type: ignore[index]


def test_celery_runs_tasks_eagerly_only_without_a_broker(tmp_path: Path) -> None:
    assert settings_values(tmp_path, ["CELERY_TASK_ALWAYS_EAGER"])["CELERY_TASK_ALWAYS_EAGER"] is True
    with_broker = settings_values(tmp_path, ["CELERY_TASK_ALWAYS_EAGER"], CELERY_BROKER_URL="redis://127.0.0.1:6379/0")
    assert with_broker["CELERY_TASK_ALWAYS_EAGER"] is False
