"""Setup in-process with Django: the database, the bench workers and the bench job."""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pool.common import JOB_PREFIX, LABELS, PASSWORD, PYTHON, ROOT, SECRET_KEY, USER_PREFIX, log


def _server_env(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=args.database_url,
        DEBUG="0",
        SECRET_KEY=SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="0",
        SESSION_COOKIE_SECURE="0",
        CSRF_COOKIE_SECURE="0",
        SECURE_HSTS_SECONDS="0",
        LOG_LEVEL="WARNING",
    )
    env.pop("TESTING", None)
    env.pop("CELERY_BROKER_URL", None)
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    else:
        env.pop("REDIS_URL", None)
    return env


def ensure_database(url: str) -> None:
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres", query="").geturl().replace("postgres://", "postgresql://", 1)
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            log(f"creating database {name}")
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def django_setup(args: argparse.Namespace) -> None:
    os.environ.update({k: v for k, v in _server_env(args).items() if k not in ("LOG_LEVEL",)})
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def migrate(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=_server_env(args), check=True
    )
    log(f"migrate done in {time.perf_counter() - started:.1f} s")


def ensure_workers(n: int) -> list[str]:
    """N internal-pool worker users, created once (one PBKDF2 hash shared by all) and reused."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from workforce.audit import Actor
    from workforce.services import register_internal_worker

    User = get_user_model()
    names = [f"{USER_PREFIX}{i:04d}" for i in range(1, n + 1)]
    existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    missing = [u for u in names if u not in existing]
    if missing:
        log(f"creating {len(missing)} worker users")
        hashed = make_password(PASSWORD)
        with transaction.atomic():
            User.objects.bulk_create([User(username=u, password=hashed) for u in missing])
    actor = Actor.system("bench")
    users_without_worker = User.objects.filter(username__in=names, worker__isnull=True)
    for user in users_without_worker:
        register_internal_worker(user=user, actor=actor)
    return names


@dataclass
class JobInfo:
    id: int
    items: int
    created: bool
    import_seconds: float | None = None
    publish_seconds: float | None = None
    import_output: str = ""


def _open_slots(job_id: int) -> int:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "SELECT coalesce(sum(assignments_wanted - slots_taken), 0) FROM tasks_hit "
            "WHERE job_id = %s AND state = 'open'",
            [job_id],
        )
        return int(cur.fetchone()[0])


def ensure_job(args: argparse.Namespace) -> JobInfo:
    """Reuse a published bench job of this size with enough open slots, or import and publish a new one."""
    from tasks.models import Job, JobState, TaskKind
    from tasks.services.jobs import create_job
    from tasks.services.publishing import cancel_job, publish_job
    from workforce.audit import Actor

    actor = Actor.system("bench")
    name = f"{JOB_PREFIX}{args.items}"
    if args.job_id:
        job = Job.objects.get(pk=args.job_id)
        return JobInfo(job.pk, job.items.count(), created=False)
    candidates = list(Job.objects.filter(name=name, state=JobState.PUBLISHED).order_by("-id"))
    if not args.fresh_job:
        for job in candidates:
            slots = _open_slots(job.pk)
            if slots >= args.min_open_slots:
                log(f"reusing job {job.pk} ({name}, {slots} open slots)")
                return JobInfo(job.pk, args.items, created=False)
    for job in candidates:  # used up (or --fresh-job): take it off the workers' list
        cancel_job(job=job, actor=actor, reason="bench: replaced by a fresh job")
    job = create_job(
        name=name,
        task_kind=TaskKind.TEXT_CLASSIFICATION,
        labels=LABELS,
        redundancy=args.redundancy,
        items_per_hit=1,
        actor=actor,
        description="Load benchmark job",
        instructions="Pick the sentiment of the text.",
    )
    tmpdir = Path(tempfile.mkdtemp(prefix="crowdops-bench-"))
    path = tmpdir / f"items-{args.items}.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["external_id", "text"])
        for i in range(args.items):
            writer.writerow([f"it-{i:07d}", f"Bench sentence number {i}: the service was fine, I guess ({i % 97})."])
    log(f"importing {args.items} items into job {job.pk} with manage.py import_items")
    started = time.perf_counter()
    proc = subprocess.run(
        [PYTHON, "manage.py", "import_items", "--job", str(job.pk), str(path)],
        cwd=ROOT,
        env=_server_env(args),
        capture_output=True,
        text=True,
    )
    import_seconds = time.perf_counter() - started
    path.unlink()
    tmpdir.rmdir()
    if proc.returncode:
        raise SystemExit(f"import_items failed ({proc.returncode}): {proc.stderr[-2000:]}")
    log(f"import: {proc.stdout.strip()} (wall {import_seconds:.1f} s incl. interpreter start)")
    started = time.perf_counter()
    publish_job(job=job, actor=actor)
    publish_seconds = time.perf_counter() - started
    log(f"published job {job.pk} in {publish_seconds:.1f} s")
    with contextlib.suppress(Exception):
        from django.db import connection

        with connection.cursor() as cur:
            for table in ("tasks_item", "tasks_hit", "tasks_hititem"):
                cur.execute(f"ANALYZE {table}")
    return JobInfo(job.pk, args.items, True, import_seconds, publish_seconds, proc.stdout.strip())
