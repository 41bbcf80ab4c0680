#!/usr/bin/env python
"""Load benchmark of the internal worker pool over HTTP, on PostgreSQL behind gunicorn.

Standalone script, not a pytest module (its name does not match ``test_*.py``). See
``tests/benchmarks/README.md``. In short::

    .venv/bin/python tests/benchmarks/load_pool.py --items 10000 --seconds 45
    .venv/bin/python tests/benchmarks/load_pool.py --items 500000 --seconds 45 --json

What one run does:

1. Setup (in-process Django against ``--database-url``): creates the database if missing, runs
   ``manage.py migrate``, creates ``--workers`` worker users once (reused by later runs), and finds or
   creates a published job of ``--items`` text items (redundancy 3) imported with
   ``manage.py import_items`` from a generated CSV and published with ``publish_job``.
2. Starts gunicorn (``config.wsgi``) on a free loopback port with production-like settings.
3. Logs ``--workers`` workers in over HTTP (session + CSRF) and, for ``--seconds``, has each loop
   "GET task page, POST submit" (the submit's redirect hands out the next task; ``start`` is POSTed
   when a worker has no task), recording each request's latency.
4. Stops gunicorn and checks the pool's rules in the database with SQL.
5. Prints a summary (``--json`` for machine-readable output); exits 1 if a rule fails, 2 on a setup
   or server failure.

Only loopback addresses are used; the load phase is bounded (``--seconds`` <= 120).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import http.client
import json
import math
import os
import random
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/crowdops_bench"
USER_PREFIX = "bench-worker-"
PASSWORD = "bench-Password-2718"
JOB_PREFIX = "bench-pool-"
LABELS = ["positive", "negative", "neutral"]
MAX_SECONDS = 120
SECRET_KEY = "bench-secret-key-not-for-production-0123456789abcdefghijklmnopqrstuvwxyz"

_TASK_PATH = re.compile(r"^/work/tasks/([0-9a-f-]{36})/$")
_ANSWER_NAME = re.compile(rb'name="answer-(\d+)" value="([^"]+)"')
_CSRF_INPUT = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Setup: database, users, job (Django in-process)
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Rule checks (SQL)
# ---------------------------------------------------------------------------------------------

DONE = "('submitted', 'approved', 'rejected')"
LIVE = "('accepted', 'submitted', 'approved', 'rejected')"
RULES: dict[str, tuple[str, str]] = {
    "a_no_worker_repeats_an_item": (
        "no worker has two assignments whose Hits share an item",
        """SELECT count(*) FROM (
             SELECT a.worker_id, hi.item_id FROM tasks_assignment a
             JOIN tasks_hititem hi ON hi.hit_id = a.hit_id
             WHERE a.job_id = %(job)s GROUP BY a.worker_id, hi.item_id HAVING count(*) > 1) bad""",
    ),
    "b_submitted_within_wanted_and_counter_exact": (
        "no Hit has more submitted assignments than wanted; hit.assignments_submitted equals the count",
        f"""SELECT count(*) FROM tasks_hit h LEFT JOIN (
              SELECT hit_id, count(*) AS n FROM tasks_assignment
              WHERE job_id = %(job)s AND state IN {DONE} GROUP BY hit_id) s ON s.hit_id = h.id
            WHERE h.job_id = %(job)s
              AND (coalesce(s.n, 0) > h.assignments_wanted OR coalesce(s.n, 0) <> h.assignments_submitted)""",
    ),
    "c_no_submit_after_lease_expiry": (
        "no assignment was submitted after its lease_expires_at",
        """SELECT count(*) FROM tasks_assignment
           WHERE job_id = %(job)s AND submitted_at IS NOT NULL AND submitted_at > lease_expires_at""",
    ),
    "d_answers_match_submitted_items": (
        "answers count equals the items of submitted assignments",
        f"""SELECT abs((SELECT count(*) FROM tasks_answer WHERE job_id = %(job)s)
                   - (SELECT count(*) FROM tasks_assignment a JOIN tasks_hititem hi ON hi.hit_id = a.hit_id
                      WHERE a.job_id = %(job)s AND a.state IN {DONE}))""",
    ),
    "e_slots_taken_exact": (
        "hit.slots_taken equals its live assignments and never exceeds assignments_wanted",
        f"""SELECT count(*) FROM tasks_hit h LEFT JOIN (
              SELECT hit_id, count(*) AS n FROM tasks_assignment
              WHERE job_id = %(job)s AND state IN {LIVE} GROUP BY hit_id) s ON s.hit_id = h.id
            WHERE h.job_id = %(job)s
              AND (coalesce(s.n, 0) <> h.slots_taken OR h.slots_taken > h.assignments_wanted)""",
    ),
}


def check_rules(job_id: int) -> dict[str, dict[str, Any]]:
    from django.db import connection

    results: dict[str, dict[str, Any]] = {}
    with connection.cursor() as cur:
        for key, (text, query) in RULES.items():
            cur.execute(query, {"job": job_id})
            bad = int(cur.fetchone()[0])
            results[key] = {"rule": text, "violations": bad, "ok": bad == 0}
    return results


def db_counts(job_id: int) -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            f"""SELECT (SELECT count(*) FROM tasks_answer WHERE job_id = %(job)s),
                       (SELECT count(*) FROM tasks_assignment WHERE job_id = %(job)s AND state IN {DONE}),
                       (SELECT count(*) FROM tasks_assignment WHERE job_id = %(job)s)""",
            {"job": job_id},
        )
        answers, submitted, assignments = cur.fetchone()
    return {"answers": answers, "submitted_assignments": submitted, "assignments": assignments}


# ---------------------------------------------------------------------------------------------
# Server
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gunicorn(args: argparse.Namespace, port: int) -> subprocess.Popen[bytes]:
    cmd = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(args.gunicorn_workers),
        "--worker-class",
        args.worker_class,
        "--threads",
        str(args.gunicorn_threads),
        "--backlog",
        "256",
        "--keep-alive",
        "5",
        "--log-level",
        "warning",
        "--chdir",
        str(ROOT),
    ]
    if args.gunicorn_config:
        cmd += ["--config", args.gunicorn_config]
    log("starting: " + " ".join(cmd[1:]))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_server_env(args), start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/accounts/login/")
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    stop_gunicorn(proc)
    raise SystemExit("gunicorn did not answer within 30 s")


def stop_gunicorn(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        # utime + stime, plus cutime + cstime: CPU of children that exited (PostgreSQL backends closed
        # when CONN_MAX_AGE runs out are reaped by the postmaster and counted there).
        return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _pids_named(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cpu_snapshot(gunicorn_pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds per process: gunicorn master + workers, PostgreSQL processes."""
    snap: dict[int, tuple[str, float]] = {}
    for pid in [gunicorn_pid, *_children(gunicorn_pid)]:
        snap[pid] = ("gunicorn", _proc_cpu(pid))
    for pid in _pids_named("postgres"):
        snap[pid] = ("postgres", _proc_cpu(pid))
    return snap


def cpu_delta(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    out: Counter[str] = Counter()
    for pid, (kind, cpu) in after.items():
        out[kind] += cpu - before.get(pid, (kind, 0.0))[1]
    return {k: round(v, 2) for k, v in out.items()}


def _machine_cpu() -> tuple[float, float]:
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in parts]
    idle = values[3] + values[4]
    return float(sum(values)), float(idle)


# ---------------------------------------------------------------------------------------------
# Load: shared bookkeeping
# ---------------------------------------------------------------------------------------------


@dataclass
class Stats:
    lat: dict[str, list[float]] = field(default_factory=lambda: {"page": [], "submit": [], "start": []})
    errors: Counter[str] = field(default_factory=Counter)
    submits_ok: int = 0
    answers_ok: int = 0
    refused: int = 0
    no_work: int = 0
    reconnects: int = 0

    def merge(self, other: Stats) -> None:
        for k, v in other.lat.items():
            self.lat.setdefault(k, []).extend(v)
        self.errors.update(other.errors)
        self.submits_ok += other.submits_ok
        self.answers_ok += other.answers_ok
        self.refused += other.refused
        self.no_work += other.no_work
        self.reconnects += other.reconnects


@dataclass
class Plan:
    host: str
    port: int
    job_id: int
    deadline: float = 0.0
    pace_seconds: float = 0.0  # minimum seconds between one worker's submits (0 = as fast as possible)
    think_seconds: float = 0.0
    sessions: dict[str, dict[str, str]] = field(default_factory=dict)  # username -> cookies (reused)
    flow: str = "json"


class Response:
    __slots__ = ("body", "location", "status")

    def __init__(self, status: int, location: str, body: bytes) -> None:
        self.status, self.location, self.body = status, location, body


def _task_form(body: bytes) -> tuple[str, dict[str, str]] | None:
    """(csrf token, {answer-<item>: label}) from a task page, choosing each item's first label."""
    csrf = _CSRF_INPUT.search(body)
    answers: dict[str, str] = {}
    for item_id, label in _ANSWER_NAME.findall(body):
        answers.setdefault(f"answer-{item_id.decode()}", label.decode())
    if not csrf or not answers:
        return None
    return csrf.group(1).decode(), answers


def _path_of(location: str) -> str:
    return urlsplit(location).path or location


# ---------------------------------------------------------------------------------------------
# Client 1: threads + http.client keep-alive connections (stdlib)
# ---------------------------------------------------------------------------------------------


class ThreadClient:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.conn = http.client.HTTPConnection(plan.host, plan.port, timeout=30)
        self.cookies: dict[str, str] = {}
        self.stats = Stats()

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> Response:
        headers = {"Host": f"{self.plan.host}:{self.plan.port}"}
        if self.plan.flow == "json" and path.startswith("/work/"):
            headers["Accept"] = "application/json"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.stats.reconnects += 1
                if attempt:
                    raise
        for header in resp.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie()
            jar.load(header)
            for key, morsel in jar.items():
                if morsel.value == "" or morsel["max-age"] == "0":
                    self.cookies.pop(key, None)
                else:
                    self.cookies[key] = morsel.value
        return Response(resp.status, resp.headers.get("Location", ""), data)

    def login(self, username: str, cached: dict[str, str] | None = None) -> bool:
        """Log in; reuse ``cached`` cookies when the server still accepts them. True if reused."""
        if cached:
            self.cookies.update(cached)
            if self.request("GET", "/work/").status == 200:
                return True
            self.cookies.clear()
        page = self.request("GET", "/accounts/login/")
        csrf = _CSRF_INPUT.search(page.body)
        if page.status != 200 or not csrf:
            raise RuntimeError(f"login page: HTTP {page.status}")
        resp = self.request(
            "POST",
            "/accounts/login/",
            {"csrfmiddlewaretoken": csrf.group(1).decode(), "username": username, "password": PASSWORD},
        )
        if resp.status != 302 or "sessionid" not in self.cookies:
            raise RuntimeError(f"login of {username} failed: HTTP {resp.status}")
        return False

    def timed(self, kind: str, method: str, path: str, form: dict[str, str] | None = None) -> Response | None:
        started = time.perf_counter()
        try:
            resp = self.request(method, path, form)
        except (OSError, http.client.HTTPException) as exc:
            self.stats.errors[f"{kind}:{type(exc).__name__}"] += 1
            self.conn.close()
            return None
        self.stats.lat[kind].append(time.perf_counter() - started)
        if resp.status >= 400:
            self.stats.errors[f"{kind}:HTTP {resp.status}"] += 1
        return resp

    def run(self) -> None:
        if self.plan.flow == "json":
            self.run_json()
        else:
            self.run_html()

    def _pause(self, next_submit: float) -> float:
        plan = self.plan
        if plan.think_seconds:
            time.sleep(plan.think_seconds)
        if plan.pace_seconds:
            now = time.monotonic()
            if next_submit > now:
                time.sleep(next_submit - now)
            next_submit = max(next_submit, now) + plan.pace_seconds
        return next_submit

    def run_json(self) -> None:
        """What the labeling page's script does: submit, and the response carries the next task."""
        plan = self.plan
        csrf = self.cookies.get("csrftoken", "")
        rng = random.Random(id(self))
        task: dict[str, Any] | None = None
        # Workers do not act in lock-step: each starts at a random phase of its pacing interval.
        next_submit = time.monotonic() + random.random() * self.plan.pace_seconds
        while time.monotonic() < plan.deadline:
            if task is None:
                resp = self.timed("start", "POST", f"/work/jobs/{plan.job_id}/start/", {"csrfmiddlewaretoken": csrf})
                if resp is None or resp.status != 200:
                    continue
                task = json.loads(resp.body).get("next")
                if task is None:
                    self.stats.no_work += 1
                    time.sleep(0.5)
                    continue
            answers = {f"answer-{item['id']}": rng.choice(LABELS) for item in task["items"]}
            next_submit = self._pause(next_submit)
            if time.monotonic() >= plan.deadline:
                break
            resp = self.timed("submit", "POST", task["submit_url"], {"csrfmiddlewaretoken": csrf, **answers})
            if resp is not None and resp.status == 200:
                self.stats.submits_ok += 1
                self.stats.answers_ok += len(answers)
                task = json.loads(resp.body).get("next")
            else:
                self.stats.refused += 1
                task = None

    def run_html(self) -> None:
        plan = self.plan
        task_path: str | None = None
        csrf = self.cookies.get("csrftoken", "")
        # Workers do not act in lock-step: each starts at a random phase of its pacing interval.
        next_submit = time.monotonic() + random.random() * self.plan.pace_seconds
        while time.monotonic() < plan.deadline:
            if task_path is None:
                resp = self.timed("start", "POST", f"/work/jobs/{plan.job_id}/start/", {"csrfmiddlewaretoken": csrf})
                if resp is None or resp.status != 302:
                    continue
                path = _path_of(resp.location)
                if not _TASK_PATH.match(path):
                    self.stats.no_work += 1
                    time.sleep(0.5)
                    continue
                task_path = path
            page = self.timed("page", "GET", task_path)
            if page is None:
                continue
            if page.status != 200:
                task_path = None
                continue
            form = _task_form(page.body)
            if form is None:
                self.stats.errors["page:unparsable"] += 1
                task_path = None
                continue
            token, answers = form
            next_submit = self._pause(next_submit)
            if time.monotonic() >= plan.deadline:
                break
            resp = self.timed("submit", "POST", task_path + "submit/", {"csrfmiddlewaretoken": token, **answers})
            if resp is None:
                task_path = None
                continue
            path = _path_of(resp.location)
            if resp.status == 302 and path != task_path:
                self.stats.submits_ok += 1
                self.stats.answers_ok += len(answers)
                task_path = path if _TASK_PATH.match(path) else None
            else:
                self.stats.refused += 1
                task_path = None


def run_threads(
    plan: Plan, usernames: list[str], seconds: float, login_concurrency: int, on_ready: Any
) -> tuple[Stats, float]:
    clients = [ThreadClient(plan) for _ in usernames]
    log(f"logging in {len(clients)} workers (threads, {login_concurrency} at a time)")
    started = time.perf_counter()
    sem = threading.Semaphore(login_concurrency)
    cache = plan.sessions

    def login(c: ThreadClient, u: str) -> None:
        with sem:
            c.login(u, cache.get(u))
            cache[u] = {k: v for k, v in c.cookies.items() if k in ("sessionid", "csrftoken")}

    threads = [threading.Thread(target=login, args=(c, u)) for c, u in zip(clients, usernames, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log(f"logged in in {time.perf_counter() - started:.1f} s")
    on_ready()
    plan.deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=c.run, daemon=True) for c in clients]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 60)
    elapsed = time.perf_counter() - t0
    total = Stats()
    for c in clients:
        total.merge(c.stats)
        c.conn.close()
    return total, elapsed


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))  # nearest rank
    return round(ordered[index] * 1000, 1)


def latency_block(values: list[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50_ms": pct(values, 50),
        "p95_ms": pct(values, 95),
        "p99_ms": pct(values, 99),
        "max_ms": round(max(values) * 1000, 1) if values else None,
        "mean_ms": round(statistics.fmean(values) * 1000, 1) if values else None,
    }


def build_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="HTTP load benchmark of the internal worker pool (gunicorn + PostgreSQL).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("database and data")
    g.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    g.add_argument("--no-create-db", action="store_true", help="Do not create the database if missing.")
    g.add_argument("--no-migrate", action="store_true", help="Skip manage.py migrate.")
    g.add_argument("--items", type=int, default=10_000, help="Items in the bench job (e.g. 10000, 500000).")
    g.add_argument("--redundancy", type=int, default=3)
    g.add_argument("--job-id", type=int, help="Use this job as it is (no reuse/creation logic).")
    g.add_argument("--fresh-job", action="store_true", help="Always import and publish a new job.")
    g.add_argument(
        "--min-open-slots",
        type=int,
        default=15_000,
        help="Reuse a published bench job of the same size while it has at least this many open slots.",
    )
    g.add_argument("--setup-only", action="store_true", help="Prepare database, users and job, then stop.")
    g.add_argument("--check-only", action="store_true", help="Only run the rule checks on the job.")
    g = p.add_argument_group("server")
    g.add_argument("--gunicorn-workers", type=int, default=4)
    g.add_argument("--gunicorn-threads", type=int, default=1)
    g.add_argument("--worker-class", default="sync", choices=["sync", "gthread"])
    g.add_argument("--gunicorn-config", help="Extra gunicorn config file (e.g. config/gunicorn.conf.py).")
    g.add_argument("--redis-url", help="Set REDIS_URL for the server (cached_db sessions, Redis cache).")
    g.add_argument("--url", help="Use an already running server at http://127.0.0.1:PORT instead of starting one.")
    g.add_argument(
        "--hold-server",
        type=float,
        default=0,
        help="Keep gunicorn up this many seconds after starting it, before the load (to attach py-spy).",
    )
    g = p.add_argument_group("load")
    g.add_argument("--workers", type=int, default=50, help="Concurrent crowd workers (HTTP sessions).")
    g.add_argument("--seconds", type=float, default=30, help=f"Load duration (max {MAX_SECONDS}).")
    g.add_argument(
        "--flow",
        default="json",
        choices=["json", "html"],
        help="json: the labeling page's script (submit returns the next task, one request per answer); "
        "html: no JavaScript (submit redirects, then GET the next task page).",
    )
    g.add_argument("--login-concurrency", type=int, default=4)
    g.add_argument(
        "--session-cache",
        default=str(Path(tempfile.gettempdir()) / "crowdops-bench-sessions.json"),
        help="File keeping the workers' session cookies between runs (logins hash passwords: slow). "
        "'none' to log in every time.",
    )
    g.add_argument(
        "--rate",
        type=float,
        default=0,
        help="Pace submits to this many per second in total (0: closed loop, as fast as the server allows).",
    )
    g.add_argument("--think-ms", type=float, default=0, help="Pause between page GET and submit, per worker.")
    g = p.add_argument_group("output")
    g.add_argument("--json", action="store_true", help="Print the summary as JSON on stdout.")
    g.add_argument("--target-answers", type=float, default=100.0)
    g.add_argument("--target-p99-ms", type=float, default=300.0)
    args = p.parse_args(argv)
    if not 0 < args.seconds <= MAX_SECONDS:
        p.error(f"--seconds must be in (0, {MAX_SECONDS}]")
    for url in (args.database_url, args.url or "http://127.0.0.1"):
        host = urlsplit(url).hostname or ""
        if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("127."):
            p.error(f"only loopback hosts are allowed, not {host!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = build_args(argv)
    if not args.no_create_db:
        ensure_database(args.database_url)
    if not args.no_migrate and not args.check_only:
        migrate(args)
    django_setup(args)
    from django.db import connection

    job = ensure_job(args) if not args.check_only else JobInfo(args.job_id or 0, 0, False)
    if args.check_only:
        if not args.job_id:
            raise SystemExit("--check-only needs --job-id")
        rules = check_rules(job.id)
        print(json.dumps(rules, indent=2))
        return 0 if all(r["ok"] for r in rules.values()) else 1
    usernames = ensure_workers(args.workers)
    if args.setup_only:
        log(f"setup done: job {job.id}")
        return 0
    before = db_counts(job.id)
    connection.close()

    proc = None
    if args.url:
        parts = urlsplit(args.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
    else:
        host, port = "127.0.0.1", free_port()
        proc = start_gunicorn(args, port)
    plan = Plan(host=host, port=port, job_id=job.id, think_seconds=args.think_ms / 1000, flow=args.flow)
    if args.rate:
        plan.pace_seconds = args.workers / args.rate
    cache_path = None if args.session_cache == "none" else Path(args.session_cache)
    if cache_path and cache_path.exists():
        with contextlib.suppress(ValueError):
            plan.sessions = json.loads(cache_path.read_text()).get(args.database_url, {})
    try:
        if proc and args.hold_server:
            log(f"gunicorn pid {proc.pid} (workers {_children(proc.pid)}); holding {args.hold_server:.0f} s")
            time.sleep(args.hold_server)
        runner = run_threads
        gpid = proc.pid if proc else 0
        marks: dict[str, Any] = {}

        def on_ready() -> None:  # CPU accounting starts after login (password hashing is not the workload)
            marks["cpu"] = cpu_snapshot(gpid) if proc else {}
            marks["machine"] = _machine_cpu()
            marks["rusage"] = resource.getrusage(resource.RUSAGE_SELF)

        stats, elapsed = runner(plan, usernames, args.seconds, args.login_concurrency, on_ready)
        ru_after = resource.getrusage(resource.RUSAGE_SELF)
        mach_after = _machine_cpu()
        cpu_after = cpu_snapshot(gpid) if proc else {}
        cpu_before, mach_before, ru_before = marks["cpu"], marks["machine"], marks["rusage"]
    finally:
        if proc:
            stop_gunicorn(proc)
        if cache_path and plan.sessions:
            cached: dict[str, Any] = {}
            with contextlib.suppress(ValueError, OSError):
                cached = json.loads(cache_path.read_text())
            cached[args.database_url] = plan.sessions
            cache_path.write_text(json.dumps(cached))
    after = db_counts(job.id)
    rules = check_rules(job.id)

    all_lat = stats.lat["page"] + stats.lat["submit"] + stats.lat["start"]
    requests = len(all_lat) + sum(stats.errors.values()) - sum(v for k, v in stats.errors.items() if "HTTP" in k)
    db_answers = after["answers"] - before["answers"]
    db_submits = after["submitted_assignments"] - before["submitted_assignments"]
    total_jiffies = mach_after[0] - mach_before[0]
    busy = 1 - (mach_after[1] - mach_before[1]) / total_jiffies if total_jiffies else 0.0
    loadgen_cpu = (ru_after.ru_utime - ru_before.ru_utime) + (ru_after.ru_stime - ru_before.ru_stime)
    cpu_by_kind = cpu_delta(cpu_before, cpu_after) if proc else {}
    ncpu = os.cpu_count() or 1
    summary: dict[str, Any] = {
        "config": {
            "database_url": args.database_url,
            "job_id": job.id,
            "items": job.items,
            "redundancy": args.redundancy,
            "workers": args.workers,
            "seconds": args.seconds,
            "flow": args.flow,
            "gunicorn": None
            if args.url
            else {"workers": args.gunicorn_workers, "threads": args.gunicorn_threads, "class": args.worker_class},
            "redis_sessions": bool(args.redis_url),
            "rate": args.rate or None,
            "think_ms": args.think_ms or None,
        },
        "job_setup": {
            "created": job.created,
            "import_seconds": round(job.import_seconds, 1) if job.import_seconds else None,
            "import_output": job.import_output or None,
            "publish_seconds": round(job.publish_seconds, 1) if job.publish_seconds else None,
        },
        "elapsed_s": round(elapsed, 2),
        "answers_per_s": round(db_answers / elapsed, 1),
        "submits_per_s": round(db_submits / elapsed, 1),
        "requests_per_s": round(requests / elapsed, 1),
        "answers_db": db_answers,
        "answers_client": stats.answers_ok,
        "submits_client": stats.submits_ok,
        "refused_submits": stats.refused,
        "no_work_redirects": stats.no_work,
        "reconnects": stats.reconnects,
        "errors": sum(stats.errors.values()),
        "error_kinds": dict(stats.errors),
        "latency": {
            "submit": latency_block(stats.lat["submit"]),
            "page": latency_block(stats.lat["page"]),
            "start": latency_block(stats.lat["start"]),
            "overall": latency_block(all_lat),
        },
        "cpu_seconds": {
            "loadgen": round(loadgen_cpu, 2),
            **cpu_by_kind,
            "machine_busy_core_seconds": round(busy * ncpu * elapsed, 2),
            "machine_busy_fraction": round(busy, 3),
        },
        # CPU cost per submitted answer, independent of other load on the machine.
        "cpu_ms_per_answer": {
            k: round(1000 * v / db_answers, 2) for k, v in {"loadgen": loadgen_cpu, **cpu_by_kind}.items()
        }
        if db_answers
        else {},
        "rules": rules,
    }
    rules_ok = all(r["ok"] for r in rules.values())
    p99 = summary["latency"]["overall"]["p99_ms"] or float("inf")
    summary["target"] = {
        "answers_per_s": args.target_answers,
        "p99_ms": args.target_p99_ms,
        "met": summary["answers_per_s"] >= args.target_answers and p99 < args.target_p99_ms,
    }
    summary["rules_ok"] = rules_ok
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_summary(summary)
    return 0 if rules_ok else 1


def print_summary(s: dict[str, Any]) -> None:
    c = s["config"]
    g = c["gunicorn"]
    print(
        f"job {c['job_id']} ({c['items']} items, redundancy {c['redundancy']}), {c['workers']} workers, "
        f"{s['elapsed_s']} s, flow={c['flow']}"
        + (f", gunicorn {g['class']} w={g['workers']} t={g['threads']}" if g else "")
        + (", redis sessions" if c["redis_sessions"] else "")
        + (f", paced to {c['rate']}/s" if c["rate"] else "")
    )
    if s["job_setup"]["created"]:
        print(
            f"  job import {s['job_setup']['import_seconds']} s ({s['job_setup']['import_output']}), "
            f"publish {s['job_setup']['publish_seconds']} s"
        )
    print(
        f"  answers/s {s['answers_per_s']}  submits/s {s['submits_per_s']}  requests/s {s['requests_per_s']}  "
        f"(answers in DB {s['answers_db']}, client saw {s['answers_client']})"
    )
    print(
        f"  errors {s['errors']} {s['error_kinds'] or ''}  refused {s['refused_submits']}  "
        f"no-work {s['no_work_redirects']}  reconnects {s['reconnects']}"
    )
    for kind in ("submit", "page", "start", "overall"):
        b = s["latency"][kind]
        print(
            f"  {kind:8s} n={b['count']:6d}  p50 {b['p50_ms']} ms  p95 {b['p95_ms']} ms  p99 {b['p99_ms']} ms  "
            f"max {b['max_ms']} ms"
        )
    print(f"  cpu seconds: {s['cpu_seconds']}")
    print(f"  cpu ms per answer: {s['cpu_ms_per_answer']}")
    for key, r in s["rules"].items():
        print(f"  rule {key}: {'OK' if r['ok'] else 'FAIL'} ({r['violations']} violations) - {r['rule']}")
    t = s["target"]
    print(f"  target >= {t['answers_per_s']} answers/s with p99 < {t['p99_ms']} ms: {'MET' if t['met'] else 'MISSED'}")


if __name__ == "__main__":
    sys.exit(main())
