"""How fast the console's pages render on a big job (PostgreSQL only).

Builds, set-based (INSERT ... SELECT generate_series), one job with 500,000 items (1% gold), 500,000 Hits,
2.5 million assignments and answers (5 workers per item out of 5,000), 500,000 consensus labels, worker
scores and 2.5 million ledger rows, in its own database, then times with Django's test client:

- the item change list of the job, the assignment change list of the job,
- the job's change page (cold: dashboard cache empty, so the page shows the at-a-glance figures read from
  the job's tallies and queues the charts' refresh; warm: cached charts),
- the streamed JSON Lines export of all labels (rows per second, peak memory of the process).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crowdops_console \\
        python tests/benchmarks/console_pages.py [--rebuild] [--runs 5]

The database must be called crowdops_console (it is filled with bench data); migrate it first.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/crowdops_console")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402

JOB_NAME = "bench-console-500k"
ITEMS = 500_000
PER_ITEM = 5
WORKERS = 5_000
LABELS = ["a", "b", "c", "d"]


def _check_database() -> None:
    name = settings.DATABASES["default"]["NAME"]
    if connection.vendor != "postgresql" or not str(name).startswith("crowdops_console"):
        sys.exit(f"Run this on a PostgreSQL database named crowdops_console... (got {connection.vendor} {name}).")


def _next_id(cursor: Any, table: str) -> int:
    cursor.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")
    return int(cursor.fetchone()[0])


def _reset_sequence(cursor: Any, table: str) -> None:
    cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")


def build() -> int:
    """Create the bench job and its rows; return its id."""
    from tasks.models import Job

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as c:
        # The rows are consistent by construction: skip the per-row foreign-key triggers (minutes at COMMIT).
        c.execute("SET LOCAL session_replication_role = replica")
        job = Job.objects.create(
            name=JOB_NAME, task_kind="text_classification", labels=LABELS, redundancy=PER_ITEM, state="published"
        )
        j = job.pk
        w0 = _next_id(c, "workforce_worker")
        c.execute(
            "INSERT INTO workforce_worker (id, marketplace, external_id, display_name, is_blocked, blocked_reason,"
            " created_at) SELECT %s + n, 'internal', 'bench-w-' || (%s + n), '', false, '', now()"
            " FROM generate_series(0, %s - 1) n",
            [w0, w0, WORKERS],
        )
        i0 = _next_id(c, "tasks_item")
        c.execute(
            "INSERT INTO tasks_item (id, job_id, external_id, payload, payload_hash, is_gold, gold_answer, created_at)"
            " SELECT %s + n, %s, 'i-' || n, jsonb_build_object('text', 'text of item ' || n), md5(n::text),"
            " n %% 100 = 0, CASE WHEN n %% 100 = 0 THEN to_jsonb((ARRAY['a','b','c','d'])[n %% 4 + 1]) END,"
            " now() - interval '30 days' FROM generate_series(0, %s - 1) n",
            [i0, j, ITEMS],
        )
        h0 = _next_id(c, "tasks_hit")
        c.execute(
            "INSERT INTO tasks_hit (id, uuid, job_id, state, assignments_wanted, slots_taken, assignments_submitted,"
            " is_gold, gold_slots, priority, marketplace, created_at)"
            " SELECT %s + n, gen_random_uuid(), %s, CASE WHEN n %% 10 = 0 THEN 'open' ELSE 'complete' END, %s,"
            " CASE WHEN n %% 10 = 0 THEN %s - 1 ELSE %s END, CASE WHEN n %% 10 = 0 THEN %s - 1 ELSE %s END,"
            " n %% 100 = 0, 0, 0, 'internal', now() - interval '30 days' FROM generate_series(0, %s - 1) n",
            [h0, j, PER_ITEM, PER_ITEM, PER_ITEM, PER_ITEM, PER_ITEM, ITEMS],
        )
        c.execute(
            "INSERT INTO tasks_hititem (hit_id, item_id, position) SELECT %s + n, %s + n, 0"
            " FROM generate_series(0, %s - 1) n",
            [h0, i0, ITEMS],
        )
        a0 = _next_id(c, "tasks_assignment")
        # Assignment k of item n: worker (5n + k) mod WORKERS, submitted over the last 30 days.
        c.execute(
            "INSERT INTO tasks_assignment (id, uuid, hit_id, job_id, worker_id, state, marketplace, accepted_at,"
            " lease_expires_at, submitted_at, reward, instructions_version)"
            " SELECT %s + m, gen_random_uuid(), %s + m / %s, %s, %s + (m %% %s), 'submitted', 'internal',"
            " now() - (m::float / %s * interval '30 days'), now(), now() - (m::float / %s * interval '30 days'),"
            " 0.05, 1 FROM generate_series(0, %s - 1) m",
            [a0, h0, PER_ITEM, j, w0, WORKERS, ITEMS * PER_ITEM, ITEMS * PER_ITEM, ITEMS * PER_ITEM],
        )
        c.execute(
            "INSERT INTO tasks_answer (assignment_id, item_id, job_id, worker_id, value, created_at)"
            " SELECT %s + m, %s + m / %s, %s, %s + (m %% %s),"
            " to_jsonb((ARRAY['a','b','c','d'])[((m / %s) + CASE WHEN m %% %s = 4 THEN 1 ELSE 0 END) %% 4 + 1]),"
            " now() FROM generate_series(0, %s - 1) m",
            [a0, i0, PER_ITEM, j, w0, WORKERS, PER_ITEM, PER_ITEM, ITEMS * PER_ITEM],
        )
        c.execute(
            "INSERT INTO tasks_consensuslabel (item_id, job_id, value, confidence, probabilities, method, version,"
            " parameters, answers_count, created_at)"
            " SELECT %s + n, %s, to_jsonb((ARRAY['a','b','c','d'])[n %% 4 + 1]), 0.5 + (n %% 50) / 100.0,"
            " '{}'::jsonb, 'mv', 1, '{}'::jsonb, %s, now() FROM generate_series(0, %s - 1) n WHERE n %% 100 <> 0",
            [i0, j, PER_ITEM, ITEMS],
        )
        c.execute(
            "INSERT INTO tasks_workerjobscore (job_id, worker_id, gold_answers, gold_score, accuracy, accuracy_low,"
            " accuracy_high, agreement, answers, updated_at)"
            " SELECT %s, %s + n, 5, 4, 0.5 + (n %% 50) / 100.0, 0.4, 0.95, 0.8, %s, now()"
            " FROM generate_series(0, %s - 1) n",
            [j, w0, ITEMS * PER_ITEM // WORKERS, WORKERS],
        )
        c.execute(
            "INSERT INTO tasks_costentry (job_id, assignment_id, worker_id, marketplace, kind, status, amount,"
            " currency, idempotency_key, reference, memo, created_at)"
            " SELECT %s, %s + m, %s + (m %% %s), 'internal', 'internal_pay', 'charged', 0.05, 'USD',"
            " 'bench-%s-' || m, '', '', now() FROM generate_series(0, %s - 1) m",
            [j, a0, w0, WORKERS, j, ITEMS * PER_ITEM],
        )
        for table in ("workforce_worker", "tasks_item", "tasks_hit", "tasks_assignment"):
            _reset_sequence(c, table)
    # The inserts above ran with the triggers off: count the job's tallies (progress, items, ledger) once.
    from tasks.services.tallies import recount_tallies
    from workforce.audit import Actor

    recount_tallies(actor=Actor.system("bench"), job_ids=[j])
    with connection.cursor() as c:
        c.execute("VACUUM ANALYZE")
    print(f"built job {j} in {time.perf_counter() - started:.0f} s", flush=True)
    return j


def _time(client: Any, url: str, runs: int, before: Any = None) -> list[float]:
    timings = []
    for _ in range(runs):
        if before:
            before()
        started = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return timings


def _report(name: str, timings: list[float]) -> None:
    print(
        f"{name:<44} median {statistics.median(timings):7.1f} ms   min {min(timings):7.1f}   max {max(timings):7.1f}"
        f"   (n={len(timings)})"
    )


def main() -> None:
    global ITEMS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rebuild", action="store_true", help="Build a new bench job even if one exists.")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--items", type=int, default=ITEMS, help="Items of a new bench job (a smoke test: fewer).")
    args = parser.parse_args()
    ITEMS = args.items
    _check_database()
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.test import Client
    from django.urls import reverse

    from tasks.models import Job

    existing = Job.objects.filter(name=JOB_NAME).order_by("-id").first()
    job_id = build() if args.rebuild or existing is None else existing.pk
    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    settings.ALLOWED_HOSTS = ["*"]
    client = Client()
    client.force_login(user)
    runs = args.runs
    print(
        f"job {job_id}: {ITEMS:,} items, {ITEMS * PER_ITEM:,} assignments and answers; {runs} runs each after 1 warm-up"
    )
    items, assignments = reverse("admin:tasks_item_changelist"), reverse("admin:tasks_assignment_changelist")
    pages = {
        "item change list (job filter)": f"{items}?job__id__exact={job_id}",
        "item change list (all jobs)": items,
        "assignment change list (job filter)": f"{assignments}?job__id__exact={job_id}",
        "assignment change list (all jobs)": assignments,
    }
    for name, url in pages.items():
        _time(client, url, 1)
        _report(name, _time(client, url, runs))
    from tasks import dashboard, tasks

    job = Job.objects.get(pk=job_id)
    job_url = reverse("admin:tasks_job_change", args=[job_id])
    # Without a broker Celery runs inline; the page's own cost is timed with the refresh task only recorded.
    queued: list[Any] = []
    tasks.refresh_job_dashboard_task.delay = lambda **kw: queued.append(kw)  # type: ignore[method-assign]
    _report("job page, figures not computed yet (cold)", _time(client, job_url, runs, before=cache.clear))
    from django.test.utils import CaptureQueriesContext

    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        client.get(job_url)
    sql_ms = sum(float(q["time"]) for q in queries.captured_queries) * 1000
    print(f"  cold view: {len(queries.captured_queries)} queries, {sql_ms:.0f} ms of them in SQL")
    started = time.perf_counter()
    dashboard.refresh_job_dashboard(job)
    print(f"{'  the background refresh task (Celery)':<44} {1000 * (time.perf_counter() - started):7.1f} ms")
    _time(client, job_url, 1)
    _report("job page, figures cached (warm)", _time(client, job_url, runs))
    print(f"  refresh tasks queued by the pages: {len(queued)}")
    import resource

    from tasks.services.exports import ExportOptions, stream_labels
    from workforce.audit import Actor

    started = time.perf_counter()
    size = rows = 0
    for part in stream_labels(job=job, fmt="jsonl", actor=Actor.system("bench"), options=ExportOptions()):
        size += len(part)
        rows += part.count(b"\n")
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"streamed jsonl export: {rows:,} labels, {size / 1e6:.0f} MB in {seconds:.1f} s ({rows / seconds:,.0f}/s);"
        f" peak RSS of the process {peak:.0f} MB"
    )


if __name__ == "__main__":
    main()
