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
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pool.checks import check_rules, db_counts
from pool.client import Plan, run_threads
from pool.common import DEFAULT_DB, MAX_SECONDS, log
from pool.data import JobInfo, django_setup, ensure_database, ensure_job, ensure_workers, migrate
from pool.report import latency_block, print_summary
from pool.server import _children, _machine_cpu, cpu_delta, cpu_snapshot, free_port, start_gunicorn, stop_gunicorn


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


if __name__ == "__main__":
    sys.exit(main())
