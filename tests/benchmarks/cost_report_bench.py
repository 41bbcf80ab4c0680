#!/usr/bin/env python
"""Benchmark: the cost report of a job with 2.5 million answers, on PostgreSQL.

Standalone script (not collected by pytest). It builds, set-based in SQL (``INSERT ... SELECT`` over
``generate_series``), one completed internal-pool job in its own database: items, Hits (one item each
by default), three approved assignments per Hit, their answers, one ledger row per assignment and one
consensus label per item; then VACUUM ANALYZE, and times ``get_cost_report``, the by-worker breakdown and
the fair-pay check (hourly pay per worker) several times, printing the best and median wall times as JSON::

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crowdops_finance \\
        .venv/bin/python tests/benchmarks/cost_report_bench.py --answers 2500000

A job built by an earlier run with the same size is reused (``--rebuild`` to build it again).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/crowdops_finance"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            log(f"created database {name}")


BUILD_SQL = [
    # Items.
    """INSERT INTO tasks_item (job_id, external_id, payload, payload_hash, is_gold, created_at)
       SELECT %(job)s, 'bench-' || g, jsonb_build_object('text', 'text ' || g), md5(g::text), false, now()
       FROM generate_series(1, %(items)s) g""",
    # One Hit per group of items, numbered so items can be matched to Hits without a loop.
    """INSERT INTO tasks_hit (uuid, job_id, state, assignments_wanted, slots_taken, assignments_submitted,
                             is_gold, gold_slots, priority, marketplace, created_at)
       SELECT gen_random_uuid(), %(job)s, 'complete', %(redundancy)s, %(redundancy)s, %(redundancy)s,
              false, 0, 0, 'internal', now()
       FROM generate_series(1, %(hits)s)""",
    """INSERT INTO tasks_hititem (hit_id, item_id, position)
       SELECT h.id, i.id, (i.rn - 1) %% %(per_hit)s
       FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM tasks_item WHERE job_id = %(job)s) i
       JOIN (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM tasks_hit WHERE job_id = %(job)s) h
         ON h.rn = (i.rn - 1) / %(per_hit)s + 1""",
    # Three approved assignments per Hit by distinct workers, spread over 30 days.
    """INSERT INTO tasks_assignment (uuid, hit_id, job_id, worker_id, state, marketplace, accepted_at,
                                    lease_expires_at, submitted_at, reviewed_at, reward)
       SELECT gen_random_uuid(), h.id, %(job)s,
              (%(workers)s::bigint[])[((h.rn * %(redundancy)s + k) %% %(n_workers)s) + 1],
              'approved', 'internal', t, t + interval '10 minutes', t + interval '1 minute',
              t + interval '2 minutes', 0.05
       FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM tasks_hit WHERE job_id = %(job)s) h
       CROSS JOIN generate_series(0, %(redundancy)s - 1) k
       CROSS JOIN LATERAL (SELECT now() - ((h.rn %% 30) || ' days')::interval AS t) ts""",
    """INSERT INTO tasks_answer (assignment_id, item_id, job_id, worker_id, value, created_at)
       SELECT a.id, hi.item_id, %(job)s, a.worker_id, '"positive"'::jsonb, a.submitted_at
       FROM tasks_assignment a JOIN tasks_hititem hi ON hi.hit_id = a.hit_id WHERE a.job_id = %(job)s""",
    # The ledger: one internal-pay row per approved assignment, as the review service books it.
    """INSERT INTO tasks_costentry (job_id, hit_id, assignment_id, worker_id, marketplace, kind, status, amount,
                                   currency, idempotency_key, reference, memo, created_at)
       SELECT %(job)s, a.hit_id, a.id, a.worker_id, 'internal', 'internal_pay', 'committed', a.reward, 'USD',
              'assignment:' || a.id || ':pay', '', '', a.reviewed_at
       FROM tasks_assignment a WHERE a.job_id = %(job)s""",
    """INSERT INTO tasks_consensuslabel (item_id, job_id, value, confidence, probabilities, method, version,
                                        parameters, answers_count, created_at)
       SELECT id, %(job)s, '"positive"'::jsonb, 1.0, '{}'::jsonb, 'mv', 1, '{}'::jsonb, %(redundancy)s, now()
       FROM tasks_item WHERE job_id = %(job)s""",
]


def build_job(*, answers: int, per_hit: int, redundancy: int, n_workers: int) -> int:
    from decimal import Decimal

    from django.db import connection, transaction
    from django.utils import timezone

    from tasks.models import Job, JobState
    from workforce.models import Marketplace
    from workforce.services import get_or_create_workers

    hits = answers // (per_hit * redundancy)
    items = hits * per_hit
    workers = get_or_create_workers(
        marketplace=Marketplace.INTERNAL, external_ids=[f"bench-finance-{i:05d}" for i in range(n_workers)]
    )
    with transaction.atomic():
        job = Job.objects.create(
            name=f"bench-finance-{answers}-{per_hit}",
            labels=["positive", "negative"],
            redundancy=redundancy,
            items_per_hit=per_hit,
            reward=Decimal("0.05"),
            state=JobState.COMPLETED,
            published_at=timezone.now() - timezone.timedelta(days=30),
            completed_at=timezone.now(),
            budget_cap=Decimal("0.05") * hits * redundancy * 2,
            budget_reserved=Decimal("0.05") * hits * redundancy,
        )
        params = {
            "job": job.pk,
            "items": items,
            "hits": hits,
            "per_hit": per_hit,
            "redundancy": redundancy,
            "workers": [w.pk for w in workers.values()],
            "n_workers": n_workers,
        }
        with connection.cursor() as cursor:
            for sql in BUILD_SQL:
                started = time.perf_counter()
                cursor.execute(sql, params)
                table = sql.split()[2]
                log(f"{table}: {cursor.rowcount} rows in {time.perf_counter() - started:.1f} s")
                cursor.execute(f"ANALYZE {table}")  # fresh statistics, or the next join plans a nested loop
    return job.pk


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--database-url", default=os.environ.get("DATABASE_URL", DEFAULT_DB))
    p.add_argument("--answers", type=int, default=2_500_000)
    p.add_argument("--items-per-hit", type=int, default=1)
    p.add_argument("--workers", type=int, default=2000)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--rebuild", action="store_true")
    args = p.parse_args(argv)
    if not args.database_url.startswith("postgres"):
        print("This benchmark needs PostgreSQL (--database-url postgres://...).", file=sys.stderr)
        return 2
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    ensure_database(args.database_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, check=True)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    from tasks.models import Answer, Job
    from tasks.reports.fair_pay import get_fair_pay
    from tasks.reports.selectors import get_cost_report, list_cost_breakdown

    name = f"bench-finance-{args.answers}-{args.items_per_hit}"
    job = Job.objects.filter(name=name).order_by("-pk").first()
    if job is None or args.rebuild:
        started = time.perf_counter()
        job = Job.objects.get(
            pk=build_job(answers=args.answers, per_hit=args.items_per_hit, redundancy=3, n_workers=args.workers)
        )
        build_seconds = round(time.perf_counter() - started, 1)
        connection.cursor().execute("VACUUM ANALYZE")
    else:
        build_seconds = None
    answers = Answer.objects.filter(job=job).count()
    timings: dict[str, list[float]] = {"report": [], "report_by_worker": [], "fair_pay": []}
    report = None
    for _ in range(args.runs):
        started = time.perf_counter()
        report = get_cost_report(job)
        timings["report"].append(time.perf_counter() - started)
        started = time.perf_counter()
        rows = list_cost_breakdown(job, by="worker")
        timings["report_by_worker"].append(time.perf_counter() - started)
        started = time.perf_counter()
        get_fair_pay(job)  # the job report page reads it too: active time per worker over approved assignments
        timings["fair_pay"].append(time.perf_counter() - started)
    assert report is not None
    print(
        json.dumps(
            {
                "job": job.pk,
                "answers": answers,
                "approved_assignments": report.approved_assignments,
                "labels": report.labels,
                "total": str(report.total),
                "cost_per_label": str(report.cost_per_label),
                "workers_in_breakdown": len(rows),
                "build_seconds": build_seconds,
                **{f"{k}_best_s": round(min(v), 3) for k, v in timings.items()},
                **{f"{k}_median_s": round(statistics.median(v), 3) for k, v in timings.items()},
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
